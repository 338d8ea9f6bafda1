"""Append-only segment files of a candle series, beside its main parquet file.

An append writes its rows to one new, immutable segment instead of rewriting the main file, so
its cost does not depend on the history stored. A segment is an uncompressed Arrow IPC file
named ``<main>.seg-<seq>-<first>-<last>.arrow`` (e.g.
``5m.parquet.seg-000000007-1672531200000-1672531500000.arrow``): ``seq`` orders segments (a
higher one was written later and wins on equal timestamps), ``first``/``last`` are the open
times of its first and last candle, so a writer knows the newest stored candle without opening
any segment. A segment appears whole or not at all (temp file, fsync, ``os.replace``, then an
fsync of the folder so that a power cut does not lose it either).

The main file's metadata key ``kmg.through`` names the highest sequence number folded into it;
segments at or below it are leftovers of an interrupted compaction and are ignored.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

_SEQ_DIGITS = 9


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment file: its folder and name, sequence number and first/last candle times."""

    directory: Path
    name: str
    seq: int
    first: int
    last: int

    @property
    def path(self) -> Path:
        """The segment file (built on demand: a listing needs only names)."""
        return self.directory / self.name


def segment_path(main: Path, seq: int, first: int, last: int) -> Path:
    """Where segment ``seq`` of the series stored in ``main`` lives."""
    return main.with_name(f"{main.name}.seg-{seq:0{_SEQ_DIGITS}d}-{first}-{last}.arrow")


def list_segments(main: Path) -> list[Segment]:
    """Every segment of ``main``'s series, oldest (lowest ``seq``) first."""
    found: list[Segment] = []
    directory, prefix = main.parent, main.name + ".seg-"
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return found
    for name in names:
        if not name.startswith(prefix) or not name.endswith(".arrow"):
            continue
        try:
            seq, first, last = map(int, name[len(prefix) : -len(".arrow")].split("-"))
        except ValueError:
            continue  # not one of ours
        found.append(Segment(directory, name, seq, first, last))
    found.sort(key=lambda seg: seg.seq)
    return found


def stray_temp_files(main: Path) -> list[Path]:
    """Temp files a killed writer of ``main``'s series left behind (only safe to delete while
    holding the series lock: then no writer of this series is running)."""
    prefix = main.name + "."
    try:
        names = main.parent.iterdir()
        return [p for p in names if p.name.startswith(prefix) and p.suffix == ".tmp"]
    except FileNotFoundError:
        return []


def write_segment(main: Path, seq: int, table: pa.Table) -> Segment:
    """Write ``table`` (non-empty, sorted by timestamp) as segment ``seq``, atomically.

    The caller holds the series lock, so the temp file's name needs no randomness.
    """
    ts = table.column("timestamp")
    first, last = int(ts[0].as_py()), int(ts[-1].as_py())
    final = segment_path(main, seq, first, last)
    sink = pa.BufferOutputStream()  # serialised in memory, then one write: cheaper than a
    with pa.ipc.new_file(sink, table.schema) as writer:  # Python file's many small writes
        writer.write_table(table)
    data = sink.getvalue()
    tmp_name = f"{final}.tmp"
    try:
        fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(main.parent)  # the rename too must survive a power cut: the candle is stored now
    return Segment(main.parent, final.name, seq, first, last)


def read_segment(segment: Segment) -> pa.Table:
    """The segment's rows (raises ``FileNotFoundError`` when it was compacted away meanwhile,
    ``OSError``/``pa.ArrowException`` when it cannot be read)."""
    with pa.OSFile(os.path.join(segment.directory, segment.name)) as source:
        return pa.ipc.open_file(source).read_all()


def fsync_dir(directory: Path) -> None:
    """Make renames and deletions in ``directory`` durable before acting on them."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
