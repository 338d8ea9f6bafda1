"""Bad input as a user meets it (issue 20, finding 9): a real ``kmg`` subprocess, exit 2, one
clear line on stderr, no traceback, nothing written.

* a DATA_DIR the bot cannot write: ``kmg demo`` and ``kmg config check`` refuse it up front;
* a binary (or non-UTF-8) ``.env``: one line naming the file, not a ``UnicodeDecodeError``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = ("demo", "--no-web", "--speed", "0", "--limit", "5")


def _kmg(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "kmg_autotrader", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with a file's bytes (None for a folder)."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def _refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 2, no traceback, and exactly one stderr line naming the problem; that line."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    naming = [line for line in lines if all(w in line for w in words)]
    assert len(naming) == 1, result.stderr
    # the line itself, at most under the settings errors' one-line heading
    assert len(lines) <= 2 and all(
        "invalid settings" in line for line in lines if line not in naming
    )
    return naming[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The user's folder: a DATA_DIR is made inside it per case."""
    root = tmp_path / "user"
    root.mkdir()
    return root


def _file_in_the_way(workdir: Path) -> tuple[str, str]:
    (workdir / "data").write_text("not a folder\n")
    return str(workdir / "data"), "is a file, not a folder"


def _under_a_file(workdir: Path) -> tuple[str, str]:
    (workdir / "notes.txt").write_text("a file\n")
    return str(workdir / "notes.txt" / "data"), "is a file, not a folder"


def _read_only_folder(workdir: Path) -> tuple[str, str]:
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder anyway")
    ro = workdir / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    return str(ro / "data"), "not writable"


CASES = {
    "file-in-the-way": _file_in_the_way,
    "under-a-file": _under_a_file,
    "read-only-folder": _read_only_folder,
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", [DEMO, ("config", "check")], ids=["demo", "config-check"])
def test_unwritable_data_dir_is_one_line_and_exit_2(
    case: str, command: tuple[str, ...], workdir: Path
) -> None:
    data_dir, reason = CASES[case](workdir)
    before = _tree(workdir)
    try:
        result = _kmg(*command, cwd=workdir, env={"DATA_DIR": data_dir})
        line = _refused(result, "DATA_DIR", reason)
        assert data_dir in line
        assert _tree(workdir) == before  # no log, no database, no candles
    finally:
        for path in workdir.rglob("*"):
            if path.is_dir():
                path.chmod(0o700)


BINARY_ENVS = {
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
    "nul-in-text": b"EXCHANGE=binance\nSYMBOLS=BTC/USDT\x00\x00\n",
    "latin-1": "EXCHANGE=binance\nUSER_NAME=J\u00fcrgen\n".encode("latin-1"),
}


@pytest.mark.parametrize("content", list(BINARY_ENVS))
@pytest.mark.parametrize("command", [("config", "check"), DEMO], ids=["config-check", "demo"])
def test_binary_env_file_is_one_line_and_exit_2(
    content: str, command: tuple[str, ...], workdir: Path
) -> None:
    (workdir / ".env").write_bytes(BINARY_ENVS[content])
    data_dir = workdir / "data"
    before = _tree(workdir)
    result = _kmg(*command, cwd=workdir, env={"DATA_DIR": str(data_dir)})
    line = _refused(result, ".env")
    assert "text" in line and "UnicodeDecodeError" not in line
    assert line.startswith("error:")  # the file, not a variable: no settings heading
    assert _tree(workdir) == before


def test_a_text_env_file_still_works(workdir: Path) -> None:
    (workdir / ".env").write_text("USER_NAME=J\u00fcrgen\nMAX_DRAWDOWN=7\n", encoding="utf-8")
    result = _kmg("config", "check", cwd=workdir, env={"DATA_DIR": str(workdir / "d")})
    assert result.returncode == 0, result.stderr
    assert "J\u00fcrgen" in result.stdout


def test_a_folder_without_write_permission_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # root may write anywhere, so the permission answer is taken from a stand-in os.access
    from kmg_autotrader.config import ConfigError, load_settings
    from kmg_autotrader.fs import unwritable_reason

    monkeypatch.setattr(os, "access", lambda *_args, **_kwargs: False)
    assert unwritable_reason(tmp_path / "d") == (
        f"cannot create {tmp_path / 'd'}: {tmp_path} is not writable by this user"
    )
    assert unwritable_reason(tmp_path) == f"{tmp_path} is not writable by this user"
    with pytest.raises(ConfigError) as info:
        load_settings(None, data_dir=tmp_path / "d")
    assert [line.split(":")[0] for line in info.value.lines] == ["DATA_DIR"]
