"""``python main.py`` is ``kmg run`` (extra arguments are passed through)."""

import sys

from kmg_autotrader.cli import main

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "run", *sys.argv[1:]]
    main()
