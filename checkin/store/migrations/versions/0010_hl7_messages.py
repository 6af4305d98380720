"""hl7_messages: every HL7 v2 message received, its ACK, the key that makes resends no-ops

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hl7_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("control_id", sa.String(length=64), nullable=True),
        sa.Column("message_type", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("ack", sa.Text(), nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("patient_ref", sa.String(length=16), nullable=True),
        sa.Column("replays", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_messages")),
        sa.UniqueConstraint("sender", "control_id", name="uq_hl7_messages_sender_control_id"),
    )
    with op.batch_alter_table("hl7_messages", schema=None) as batch_op:
        batch_op.create_index("ix_hl7_messages_outcome_received", ["outcome", "received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hl7_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_hl7_messages_outcome_received")
    op.drop_table("hl7_messages")
