"""Every command's ``--help`` as a user sees it (a real subprocess per command): value names a
user understands, whole sentences, no project-internal words, unbuilt commands marked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import typer.main

from kmg_autotrader.cli import app

SRC = str(Path(__file__).resolve().parents[2] / "src")
_PLACEHOLDER = re.compile(r"<(bool|str|int|float|path|list)\b")
_SENTENCE_END = (".", "!", "?", ")", "`")


def _command_paths() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


def _help(path: tuple[str, ...]) -> str:
    env = {
        **os.environ,
        "COLUMNS": "200",
        "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "kmg_autotrader", *path, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _description(text: str) -> list[str]:
    """The paragraphs between the usage line and the first panel, each joined into one line."""
    body = text.split("Usage:", 1)[1].split("\n", 1)[1].split("╭", 1)[0]
    paragraphs = re.split(r"\n\s*\n", body.strip())
    return [" ".join(p.split()) for p in paragraphs if p.strip()]


def _command_list(text: str) -> dict[str, str]:
    """The Commands panel: command name → its one-line help (wrapped lines joined)."""
    if "─ Commands ─" not in text:
        return {}
    panel = text.split("─ Commands ─", 1)[1].split("╰", 1)[0]
    entries: dict[str, str] = {}
    name = ""
    for line in panel.splitlines()[1:]:
        cell = line.strip().strip("│").rstrip()
        match = re.match(r"^ (\S+)\s{2,}(.*)$", cell)
        if match:
            name = match.group(1)
            entries[name] = match.group(2).strip()
        elif name and cell.strip():
            entries[name] += " " + cell.strip()
    return entries


def test_every_help_has_plain_value_names_whole_sentences_and_no_internal_words() -> None:
    paths = _command_paths()
    assert len(paths) > 15  # the walk found the tree
    for path in paths:
        text = _help(path)
        where = "kmg " + " ".join(path)
        assert not _PLACEHOLDER.search(text), f"{where}: {_PLACEHOLDER.search(text)}"
        assert not re.search(r"\bissues?\b|\blanded\b", text, re.IGNORECASE), where
        for paragraph in _description(text):
            assert paragraph.endswith(_SENTENCE_END), f"{where}: cut mid-sentence: {paragraph!r}"
            # a docstring's hard line break shows as a line ending mid-sentence; joined, a
            # paragraph reads as one
        for name, line in _command_list(text).items():
            assert line.endswith(_SENTENCE_END), f"{where} lists {name} cut: {line!r}"
        body = text.split("╭", 1)[0]
        for line in body.splitlines():
            # a line of the description that stops well short of the width, then goes on
            # on the next line, is a hard break from the source
            assert len(line.rstrip()) < 10 or not line.rstrip().endswith((" the", " and")), (
                f"{where}: {line!r}"
            )


def test_unbuilt_commands_are_marked_and_say_so_without_internal_words() -> None:
    listed = _command_list(_help(()))
    for command in ("train", "chat"):
        assert listed[command].startswith("(not available yet)"), listed[command]
        assert "(not available yet)" in _help((command,))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "kmg_autotrader", "train"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not available yet" in result.stderr
    assert not re.search(r"\bissue\b|landed", result.stderr, re.IGNORECASE), result.stderr
