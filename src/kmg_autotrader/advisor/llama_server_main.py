"""Entry point the bot runs for its local model server: ``python -m
kmg_autotrader.advisor.llama_server_main <llama_cpp.server arguments>``.

It is ``python -m llama_cpp.server`` with llama.cpp's "extra buffer types" (the CPU weight
repacking and AMX kernels) switched off. Those kernels are picked from the build machine's CPU
flags, and where the CPU advertises AMX but the kernel or hypervisor does not grant it, the first
multi-token batch decode dies with a segmentation fault (seen with llama-cpp-python 0.3.36 on a
Xeon VM). Plain CPU kernels are a little slower and always safe; a 135M model does not notice.

It also dies with the bot: when ``KMG_LLM_PARENT_PID`` is set, a watchdog thread exits the
server as soon as that process is gone, even after a SIGKILL that left the bot no chance to stop
it (the server runs in its own session, so nothing else would).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

#: Environment variable holding the pid of the process the server must not outlive.
PARENT_PID_ENV = "KMG_LLM_PARENT_PID"
#: Seconds between two looks at the parent: the server is gone within about this long.
WATCH_INTERVAL_S = 0.5


def _watch_parent(parent_pid: int, interval_s: float = WATCH_INTERVAL_S) -> None:
    """Exit this process when ``parent_pid`` is no longer its parent (it died and the server
    was re-parented). Polling ``getppid`` works whichever thread started the server, unlike
    Linux's parent-death signal, which fires when that *thread* ends."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        print(f"parent process {parent_pid} is gone: stopping", file=sys.stderr, flush=True)
        os._exit(0)  # no state worth flushing; a graceful stop could wait on a generation

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _without_extra_buffer_types() -> None:
    """Make every model load with ``use_extra_bufts = False``."""
    import llama_cpp.llama_cpp as low_level

    original = low_level.llama_model_default_params

    def patched() -> Any:
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = patched


def main() -> None:
    """Run ``llama_cpp.server`` (its own command-line parsing) with the safe CPU kernels."""
    parent = os.environ.get(PARENT_PID_ENV)
    if parent:
        _watch_parent(int(parent))  # first, so a bot killed during our start-up is noticed
    _without_extra_buffer_types()
    from llama_cpp.server.__main__ import main as server_main

    server_main()


if __name__ == "__main__":
    main()
