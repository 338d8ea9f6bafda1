"""``python3 main.py`` is ``kmg run`` (extra arguments are passed through).

It works as written, with no virtualenv active: when this checkout has a ``.venv`` (made by
``install.sh``) and another interpreter runs this file, it starts again under ``.venv``'s
python. The checkout's own ``src`` comes first on the path, so it always runs this code.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_REEXEC = "KMG_MAIN_REEXEC"  # set on the re-executed process: never loop


def _venv_python() -> Path | None:
    """``.venv``'s python when it exists and is not the interpreter already running."""
    venv = HERE / ".venv"
    python = venv / "bin" / "python"
    if os.environ.get(_REEXEC) or not python.exists():
        return None
    if Path(sys.prefix).resolve() == venv.resolve():
        return None
    return python


def run() -> None:
    """Re-execute under ``.venv`` if needed, then run ``kmg run`` with the arguments given."""
    python = _venv_python()
    if python is not None:
        os.environ[_REEXEC] = "1"
        os.execv(python, [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.path.insert(0, str(HERE / "src"))
    try:
        from kmg_autotrader.cli import main
    except ModuleNotFoundError as exc:
        print(
            f"error: {exc.name} is not installed for {sys.executable}. "
            f"Run `bash install.sh` once (it makes {HERE / '.venv'}), then `python3 main.py`.",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    sys.argv = [sys.argv[0], "run", *sys.argv[1:]]
    main()


if __name__ == "__main__":
    run()
