"""risk parameter versions per mode

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08 00:00:00

Before this revision one list of versions applied to both modes, so a PAPER edit changed LIVE
limits. Now every version belongs to one mode and versions count per mode.

Existing rows: each one stays as the PAPER version it was and is copied as the LIVE version of
the same number (comment marked), so neither mode's limits change at the upgrade; from then
on an edit in one mode leaves the other alone. (Giving them to PAPER only would have put a
LIVE bot back on the `.env` limits at the upgrade, possibly looser than the edit it ran with.)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPIED = " [copied to live by migration 0002: before it, each version applied to both modes]"


def upgrade() -> None:
    with op.batch_alter_table("risk_parameter_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mode", sa.String(length=8), nullable=False, server_default="paper")
        )
        batch_op.drop_constraint("uq_risk_parameter_versions_version", type_="unique")
        batch_op.create_unique_constraint(
            "uq_risk_parameter_versions_mode_version", ["mode", "version"]
        )
        batch_op.create_index(batch_op.f("ix_risk_parameter_versions_mode"), ["mode"], unique=False)
    op.execute(
        sa.text(
            "INSERT INTO risk_parameter_versions "
            "(mode, version, params, source, comment, created_at) "
            "SELECT 'live', version, params, source, comment || :copied, created_at "
            "FROM risk_parameter_versions WHERE mode = 'paper'"
        ).bindparams(copied=COPIED)
    )
    with op.batch_alter_table("risk_parameter_versions", schema=None) as batch_op:
        batch_op.alter_column("mode", existing_type=sa.String(length=8), server_default=None)


def downgrade() -> None:
    # back to one list: the PAPER versions (the LIVE ones cannot share their numbers)
    op.execute("DELETE FROM risk_parameter_versions WHERE mode <> 'paper'")
    with op.batch_alter_table("risk_parameter_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_parameter_versions_mode"))
        batch_op.drop_constraint("uq_risk_parameter_versions_mode_version", type_="unique")
        batch_op.create_unique_constraint("uq_risk_parameter_versions_version", ["version"])
        batch_op.drop_column("mode")
