"""Private files: what the bot keeps under ``DATA_DIR`` is readable by its owner only.

``DATA_DIR`` holds the trading history (database, vault, snapshots), the logs and the web keys.
Three layers keep it private:

* the CLI sets the process umask to 077 once at start (:func:`restrict_umask`), so every file
  and directory any part of the bot creates is 0600 / 0700, whatever module creates it;
* the database and the log file are also created 0600 explicitly (:func:`private_file`,
  :func:`private_opener`) and an existing looser one is tightened, so library use (tests, an
  embedding program) gets the same modes;
* directories the bot creates are 0700 (:func:`private_dir`); an existing ``DATA_DIR`` readable
  by others is reported, not changed (it may be a folder the user shares on purpose).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from loguru import logger

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def restrict_umask() -> int:
    """Make every file this process creates 0600 and every directory 0700; return the old umask.

    Called once by the CLI entry point, before any command runs.
    """
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; an existing one is left as it is."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def _owned(st: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def tighten(path: Path) -> None:
    """Remove group/other permissions from a file this user owns (no-op if missing)."""
    try:
        st = path.stat()
    except OSError:  # missing (or unreadable): nothing to tighten
        return
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077 and _owned(st):
        try:
            path.chmod(mode & ~0o077)
        except OSError as exc:  # a read-only file system: say so, carry on
            logger.warning("cannot make {} private: {}", path, exc.strerror or exc)
            return
        logger.info("{} was readable by others (mode {:o}): now {:o}", path, mode, mode & ~0o077)


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists with mode 0600 (created empty, or an existing one tightened)."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        tighten(path)
    return path


def private_opener(path: str, flags: int) -> int:
    """An ``open(..., opener=)`` that creates files 0600 (loguru passes it on to ``open``)."""
    return os.open(path, flags, FILE_MODE)


def unwritable_reason(path: Path) -> str | None:
    """Why this user could not keep files in the folder ``path``, or None when it can.

    Creates nothing: a missing folder is judged by its nearest existing parent (the bot creates
    it on first use). Catches a file where a folder should be, a folder without write or enter
    permission and a read-only file system (``os.access`` reports ``EROFS`` even for root).
    """
    target = Path(os.path.abspath(path))
    existing = target
    try:
        while not existing.exists():
            if existing.parent == existing:  # pragma: no cover - the root always exists
                return None
            existing = existing.parent
    except OSError as exc:  # a parent this user may not enter
        return f"cannot reach {path}: {exc.strerror or exc}"
    if not existing.is_dir():
        if existing == target:
            return f"{path} is a file, not a folder"
        return f"cannot create {path}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == target:
            return f"{path} is not writable by this user"
        return f"cannot create {path}: {existing} is not writable by this user"
    return None


def warn_if_shared(path: Path) -> None:
    """Log once per call when a directory is readable or enterable by others."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        logger.warning(
            "{} is open to other users (mode {:o}); it holds the trading history and keys: "
            "chmod 700 {}",
            path,
            mode,
            path,
        )
