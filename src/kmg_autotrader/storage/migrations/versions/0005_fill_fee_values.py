"""fees paid in a third currency keep their value in the quote currency

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 03:20:00

A fill whose fee was charged in neither the base nor the quote currency (Binance's BNB
discount) now stores that fee's value in the quote currency at the fill's time (``fee_quote``)
and the price used (``fee_rate``); both stay NULL for other fills and when no price was known
(the fee itself, in its own currency, is always kept in ``fee`` / ``fee_currency``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kmg_autotrader.storage.types import Money

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fee_quote", Money(precision=38, scale=18), nullable=True))
        batch_op.add_column(sa.Column("fee_rate", Money(precision=38, scale=18), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_column("fee_rate")
        batch_op.drop_column("fee_quote")
