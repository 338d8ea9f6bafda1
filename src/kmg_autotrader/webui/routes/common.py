"""Pieces shared by the API routers: auth dependency, documented errors, paging."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import Depends, Query

from kmg_autotrader.webui.auth import require_auth
from kmg_autotrader.webui.schemas import ErrorResponse

MAX_LIMIT = 200
MAX_OFFSET = 100_000
MAX_TIME_MS = 9_999_999_999_999  # year 2286: keeps every time inside a 64-bit column

THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorResponse,
        "description": "Too many wrong tokens from this client within a minute (see "
        "Retry-After); the right token still works.",
    },
}
SECURED: dict[str, Any] = {
    "dependencies": [Depends(require_auth)],
    "responses": {
        401: {"model": ErrorResponse, "description": "Missing or invalid token or session."},
        **THROTTLED,
    },
}
UNSAFE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "Cookie session without a valid CSRF token."},
}

BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **UNSAFE_RESPONSES,
    400: {"model": ErrorResponse, "description": "The body could not be read."},
    413: {"model": ErrorResponse, "description": "The body is larger than 64 KB (not read)."},
}

LimitQuery = Query(50, ge=1, le=MAX_LIMIT, description=f"Rows per page (1..{MAX_LIMIT}).")
OffsetQuery = Query(0, ge=0, le=MAX_OFFSET, description="Rows to skip.")


def time_query(default: int | None, description: str) -> Any:
    """A UTC epoch-ms query parameter, bounded so no value overflows the database column."""
    return Query(default, ge=0, le=MAX_TIME_MS, description=description)


def num(value: Decimal | float | int | None) -> float | None:
    """A stored number as a float (None stays None)."""
    return float(value) if value is not None else None


def num0(value: Decimal | float | int | None) -> float:
    """A stored number as a float (None becomes 0)."""
    return float(value) if value is not None else 0.0
