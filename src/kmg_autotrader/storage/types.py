"""Column types shared by the models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class Money(TypeDecorator[Decimal]):
    """Exact decimal money.

    ``NUMERIC(38, 18)`` on PostgreSQL. SQLite has no exact decimal type (its NUMERIC affinity
    turns values into binary floats), so there the value is stored as its canonical decimal
    text, which round-trips exactly; ``CAST(x AS REAL)`` makes it summable in ``sqlite3``.
    """

    impl = Numeric(38, 18)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(38, 18, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            if isinstance(value, float):
                raise TypeError("money must be Decimal or str, not float (precision would be lost)")
            value = Decimal(str(value))
        if not value.is_finite():
            raise ValueError(f"money must be finite, got {value}")
        if dialect.name == "sqlite":
            return format(value.normalize(), "f") if value != 0 else "0"
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        result = value if isinstance(value, Decimal) else Decimal(str(value))
        # strip PostgreSQL's trailing zeros (NUMERIC(38,18) pads to 18 places)
        return result.normalize() if result != 0 else Decimal(0)
