"""Errors the advisor raises to its caller (everything else it turns into an abstention)."""

from __future__ import annotations


class AdvisorUnavailableError(RuntimeError):
    """``ADVISOR_MODE=required`` but the advisor cannot run (no endpoint, the local model server
    cannot start). The bot must not start: trading on rules alone is what ``required`` forbids.

    The message is one line, meant for ``cli_support.fail`` (exit 2, like a bad setting).
    """
