"""wider inbound from_phone (64) and error codes (32): signed webhooks must fit

A signed webhook with ``From=whatsapp:+1…`` (over 20 characters) or a long ``ErrorCode`` failed
its insert on PostgreSQL (SQLite ignores lengths), answered 503 and was lost.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

WIDER = (
    ("inbound_messages", "from_phone", 20, 64),
    ("delivery_events", "error_code", 16, 32),
    ("outbox", "last_error_code", 16, 32),
)


def upgrade() -> None:
    for table, column, old, new in WIDER:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(old), type_=sa.String(new))


def downgrade() -> None:
    for table, column, old, new in WIDER:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(new), type_=sa.String(old))
