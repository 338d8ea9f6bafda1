"""closed positions keep the amount they closed

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 03:00:00

Before this revision a closed position's ``amount`` was what it still held after the exit: 0.
Positions are now closed with the amount their exits sold. This revision gives the positions
closed before it the same: the sum of the sell fills of their orders (a position that never
bought stays at 0). The downgrade leaves the amounts (0 told nothing; the old code never reads
a closed position's amount).
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    closed = bind.execute(
        sa.text("SELECT id, mode, amount FROM positions WHERE closed_at IS NOT NULL")
    ).all()
    for position_id, mode, amount in closed:
        if Decimal(str(amount)) != 0:
            continue
        sold = bind.execute(
            sa.text(
                "SELECT f.amount FROM fills f JOIN orders o "
                "ON o.mode = f.mode AND o.client_order_id = f.client_order_id "
                "WHERE o.position_id = :pid AND o.mode = :mode AND f.side = 'sell'"
            ),
            {"pid": position_id, "mode": mode},
        ).all()
        total = sum((Decimal(str(row[0])) for row in sold), Decimal(0))
        if total == 0:
            continue
        value: object = format(total.normalize(), "f") if sqlite else total
        bind.execute(
            sa.text("UPDATE positions SET amount = :amount WHERE id = :pid"),
            {"amount": value, "pid": position_id},
        )


def downgrade() -> None:
    pass
