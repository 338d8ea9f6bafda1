"""Where the paper exchange keeps its book: nowhere (backtests) or a locked file + the database.

A ledger wraps every engine operation in :meth:`PaperLedger.session`. :class:`FileLedger`
takes an exclusive file lock (portalocker), reloads the state if another process changed it,
and after a write saves it atomically and mirrors balances into the ``balances`` table (mode
``paper``) — so the bot and a ``kmg flatten`` run see one consistent paper account.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import portalocker

from kmg_autotrader.domain import Mode

if TYPE_CHECKING:
    from kmg_autotrader.execution.paper.engine import PaperEngine
    from kmg_autotrader.storage.repositories import BalanceRepository


_NO_SESSION: AbstractContextManager[None] = nullcontext()  # reusable and re-entrant


class PaperLedger(Protocol):
    """Persistence of a paper engine's state around each operation."""

    def session(self, engine: PaperEngine, *, write: bool) -> Any:
        """A context manager around one engine operation."""
        ...


class MemoryLedger:
    """Keeps nothing: the engine's memory is the ledger (backtests, tests)."""

    def session(self, engine: PaperEngine, *, write: bool) -> AbstractContextManager[None]:
        """No locking, no I/O: one shared do-nothing context (the engine enters a session on
        every call, so it is not a new generator each time)."""
        return _NO_SESSION


class FileLedger:
    """A JSON file guarded by a portalocker lock, with balances mirrored to the database."""

    def __init__(self, path: Path | str, balances: BalanceRepository | None = None) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_suffix(self.path.suffix + ".lock")
        self.balances = balances
        self._depth = 0
        self._dir_ready = False
        # (inode, size, mtime, ctime) of the file as last read or written here, and the engine
        # version it held: unchanged, it is not read again (every candle opens a session, and
        # the book grows with every trade). A save replaces the file: a new inode, a new sig.
        self._seen: tuple[tuple[int, int, int, int] | None, str] | None = None

    @contextmanager
    def session(self, engine: PaperEngine, *, write: bool) -> Iterator[None]:
        """Lock, reload if changed elsewhere, run, then save (when writing). A look
        (``write=False``) at a file unchanged since this ledger last read or wrote it takes no
        lock and reads nothing."""
        if self._depth:  # re-entrant: an outer session already holds the lock
            yield
            return
        if not write and self._seen is not None and self._seen == (self._stat(), engine.version):
            # a look at a book nobody changed since this ledger read or wrote it: the memory is
            # the file (a writer elsewhere replaces it whole, under the lock), so no lock file
            # to open (every candle and tick of every symbol opens a session)
            yield
            return
        if not self._dir_ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._dir_ready = True
        with portalocker.Lock(str(self.lock_path), mode="a", timeout=30):
            self._depth += 1
            try:
                sig = self._stat()
                if self._seen != (sig, engine.version):
                    state = self.read()
                    if state is not None and str(state.get("version", "")) != engine.version:
                        engine.restore(state)
                        engine.version = str(state.get("version", ""))
                    self._seen = (sig, engine.version) if state is not None else None
                yield
                if write:
                    engine.version = uuid.uuid4().hex  # a token, so any change elsewhere shows
                    self._save(engine)
                    self._seen = (self._stat(), engine.version)
            finally:
                self._depth -= 1

    def _stat(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def read(self) -> dict[str, Any] | None:
        """The stored state, or None when there is none yet."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return dict(data)

    def _save(self, engine: PaperEngine) -> None:
        state = engine.snapshot()
        state["version"] = engine.version
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # one C-encoded string: json.dump streams through the pure-Python encoder,
                # ten times slower, and the book grows with every order
                handle.write(json.dumps(state))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self.balances is not None:
            self.balances.set_many(
                Mode.PAPER,
                {c: (Decimal(f), Decimal(u)) for c, (f, u) in state["balances"].items()},
            )

    def clear(self) -> None:
        """Delete the stored book (paper reset)."""
        self.path.unlink(missing_ok=True)
