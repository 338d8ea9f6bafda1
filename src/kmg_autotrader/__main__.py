"""``python -m kmg_autotrader`` runs the CLI."""

from kmg_autotrader.cli import main

main()
