"""A guard that fails any test reading the workplace's shared data folder (issue 19).

The repository must carry every file its tests read. The shared folder beside the checkout
(``<checkout>/../shared``) holds the same real candles, so a test that quietly reads it passes
here and fails on any other clone. :func:`install` adds a Python audit hook that refuses, with
:class:`OutsideReadError`, every ``open``, directory listing or glob of a path under a
forbidden root, and every subprocess whose arguments name one (a ``kmg data import
../shared/…`` child would read it out of the hook's sight). ``tests/conftest.py`` installs it
for every run and also fails the test at teardown, in case the code under test caught the
error.

Forbidden roots: ``<checkout>/../shared`` plus any folder in ``KMG_TEST_FORBIDDEN_DIRS``
(``os.pathsep``-separated).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
_EVENTS = {
    "open",
    "os.listdir",
    "os.scandir",
    "glob.glob",
    "pathlib.Path.glob",
    "pathlib.Path.rglob",
    "subprocess.Popen",
}


class OutsideReadError(RuntimeError):
    """A test touched a file outside the repository under a forbidden root.

    Not an ``OSError``: code that handles a missing or unreadable file (pathlib's glob skips
    folders it may not list) must not swallow it quietly.
    """


class _Guard:
    def __init__(self) -> None:
        self.roots: tuple[str, ...] = ()
        self.violations: list[str] = []
        self.active = False

    def configure(self, roots: Iterable[Path]) -> None:
        # both spellings: as given and with symlinks resolved
        spelled = {os.path.abspath(r) for r in roots} | {os.path.realpath(r) for r in roots}
        self.roots = tuple(sorted(r.rstrip(os.sep) + os.sep for r in spelled))

    def forbidden(self, value: Any) -> str | None:
        """The path ``value`` names when it lies under a forbidden root, else None."""
        if isinstance(value, int) or value is None:
            return None
        try:
            raw = os.fsdecode(os.fspath(value))
        except TypeError:
            return None
        path = os.path.abspath(raw) + os.sep
        return raw if path.startswith(self.roots) else None

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or event not in _EVENTS:
            return
        candidates: Iterable[Any]
        if event == "subprocess.Popen":
            executable, argv, cwd = args[0], args[1], args[2]
            parts = [argv] if isinstance(argv, str | bytes | os.PathLike) else list(argv or ())
            candidates = [executable, cwd, *parts]
            # an argument like --data-file=../shared/x or a path inside a longer string
            hits = [str(p) for p in parts if any(r in os.fsdecode(str(p)) for r in self.roots)]
            if hits:
                self._refuse(event, hits[0])
        else:
            candidates = args[:1]
        for candidate in candidates:
            found = self.forbidden(candidate)
            if found is not None:
                self._refuse(event, found)

    def _refuse(self, event: str, path: str) -> None:
        message = (
            f"a test read {path!r} ({event}), outside the repository under the shared data "
            "folder: put the file under tests/data/ (with its provenance) or use sample_data/"
        )
        self.violations.append(message)
        raise OutsideReadError(message)


GUARD = _Guard()
_installed = False


def default_roots() -> list[Path]:
    """``<checkout>/../shared`` and the folders of ``KMG_TEST_FORBIDDEN_DIRS``."""
    roots = [REPO.parent / "shared"]
    extra = os.environ.get("KMG_TEST_FORBIDDEN_DIRS", "")
    roots += [Path(p) for p in extra.split(os.pathsep) if p.strip()]
    return roots


def install(roots: Iterable[Path] | None = None) -> _Guard:
    """Configure the guard and add its audit hook once (audit hooks cannot be removed)."""
    global _installed
    GUARD.configure(default_roots() if roots is None else roots)
    if not _installed:
        sys.addaudithook(GUARD.hook)
        _installed = True
    GUARD.active = True
    return GUARD
