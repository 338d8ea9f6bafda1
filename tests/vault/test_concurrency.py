"""Concurrent appends (two processes, and threads) only ever produce whole lines."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from pathlib import Path

from kmg_autotrader.vault import VaultReader, VaultWriter

WORKER = """
import os, sys, time
from kmg_autotrader.vault import VaultWriter

data_dir, tag, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
writer = VaultWriter(data_dir, fsync=False)
open(go + "-ready-" + tag, "w").close()
while not os.path.exists(go):  # start together, so the appends really overlap
    time.sleep(0.001)
for i in range(count):
    # sizes up to ~96 KiB: far beyond PIPE_BUF, so only the lock + one write keep lines whole
    writer.append("trades", {"tag": tag, "i": i, "pad": "x" * ((i * 7919) % 98_304)}, ts_ms=0)
"""


def test_two_processes_append_whole_lines(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    count = 300
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(data_dir), tag, str(count), str(go)])
        for tag in ("a", "b")
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"go-ready-{t}").exists() for t in ("a", "b")):
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.005)
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=60) == 0

    path = data_dir / "vault" / "trades" / "1970-01-01.jsonl"
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    reader = VaultReader(data_dir)
    records = list(reader.read("trades"))
    assert reader.problems == []
    assert len(records) == raw.count(b"\n") == 2 * count
    for tag in ("a", "b"):
        mine = [r["data"]["i"] for r in records if r["data"]["tag"] == tag]
        assert mine == list(range(count))  # each process's records in its own order
    switches = sum(
        1 for x, y in itertools.pairwise(records) if x["data"]["tag"] != y["data"]["tag"]
    )
    assert switches > 1  # the two writers did interleave
    assert all(len(r["data"]["pad"]) == (r["data"]["i"] * 7919) % 98_304 for r in records)


def test_threads_append_whole_lines(tmp_path: Path) -> None:
    writer = VaultWriter(tmp_path, fsync=False)

    def work(tag: int) -> None:
        for i in range(100):
            writer.append("decisions", {"tag": tag, "i": i, "pad": "y" * (i * 301)}, ts_ms=0)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader = VaultReader(tmp_path)
    assert len(list(reader.read("decisions"))) == 400
    assert reader.problems == []
