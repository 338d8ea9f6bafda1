"""`install.sh --service`: the systemd unit for `kmg run` (restart on failure, after PostgreSQL,
logs in journald), written under DESTDIR by `--service --dry-run` so no test needs root or
systemd; checked by `systemd-analyze verify` when the machine has it."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = Path("etc/systemd/system/kmg-autotrader.service")


def _checkout(tmp_path: Path) -> Path:
    """install.sh and its template in a folder of their own, with the .venv's `kmg` present."""
    checkout = tmp_path / "kmg autotrader"  # a space: the unit must still name it right
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "install.sh", checkout / "install.sh")
    shutil.copytree(ROOT / "scripts" / "systemd", checkout / "scripts" / "systemd")
    kmg = checkout / ".venv" / "bin" / "kmg"
    kmg.parent.mkdir(parents=True)
    kmg.write_text("#!/bin/sh\n", encoding="utf-8")
    kmg.chmod(0o755)
    return checkout


def _install(checkout: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(checkout / "install.sh"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def test_service_dry_run_writes_a_unit_for_kmg_run_under_destdir_only(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    dest = tmp_path / "dest"
    result = _install(checkout, "--service", "--dry-run", DESTDIR=str(dest), KMG_SERVICE_USER="kmg")
    assert result.returncode == 0, result.stderr
    unit = _unit(dest / UNIT)
    service, section = unit["Service"], unit["Unit"]
    folder = str(checkout.resolve())
    assert service["ExecStart"] == f'"{folder}/.venv/bin/kmg" run'
    assert service["WorkingDirectory"] == folder  # .env is read from there
    assert service["User"] == "kmg"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # bad settings: no restart loop
    assert service["StandardOutput"] == service["StandardError"] == "journal"
    assert "postgresql.service" in section["After"].split()
    assert "postgresql.service" in section["Wants"].split()
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "@" not in (dest / UNIT).read_text(encoding="utf-8")  # every placeholder filled
    # the dry run did nothing else: no .env, no package install, and says how to start it
    assert not (checkout / ".env").exists()
    assert "systemctl enable --now kmg-autotrader" in result.stdout
    assert "journalctl -u kmg-autotrader" in result.stdout
    assert sorted(p.relative_to(dest) for p in dest.rglob("*") if p.is_file()) == [UNIT]


def test_service_without_postgres_does_not_wait_for_it(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    dest = tmp_path / "dest"
    result = _install(checkout, "--no-postgres", "--service", "--dry-run", DESTDIR=str(dest))
    assert result.returncode == 0, result.stderr
    assert "postgresql" not in (dest / UNIT).read_text(encoding="utf-8")


def test_dry_run_without_destdir_prints_the_unit_and_writes_nothing(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    result = _install(checkout, "--service", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would write /etc/systemd/system/kmg-autotrader.service" in result.stdout
    assert "ExecStart=" in result.stdout
    assert _install(checkout, "--dry-run").returncode == 2  # only meaningful with --service


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    dest = tmp_path / "dest"
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    assert _install(checkout, "--service", "--dry-run", DESTDIR=str(dest), KMG_SERVICE_USER=user)
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(dest / UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stderr
    complaints = [line for line in verify.stderr.splitlines() if "kmg-autotrader" in line]
    assert complaints == []


def test_install_sh_shows_pips_progress() -> None:
    text = (ROOT / "install.sh").read_text(encoding="utf-8")
    installs = [line for line in text.splitlines() if re.search(r"pip install .*-e ", line)]
    assert installs and all(" -q" not in line for line in installs), installs
