"""alert escalation round; open urgent alerts whose ladder ended resume (repeat of the last step)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalation_round", sa.Integer(), nullable=False, server_default="0"))
    # Unacknowledged urgent/emergency alerts whose ladder had ended went quiet; the last step now
    # repeats, so make them due again (the sweep sends one repeat, not every missed one).
    op.execute(
        "UPDATE alerts SET next_escalation_at = updated_at WHERE status = 'open' "
        "AND next_escalation_at IS NULL AND severity IN ('urgent', 'emergency')"
    )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("escalation_round")
