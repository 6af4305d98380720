"""fhir_exports: resources queued for the EHR's FHIR server, one row per identifier

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fhir_exports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_exports")),
        sa.UniqueConstraint("identifier", name=op.f("uq_fhir_exports_identifier")),
    )
    with op.batch_alter_table("fhir_exports", schema=None) as batch_op:
        batch_op.create_index("ix_fhir_exports_state_retry", ["state", "retry_at"], unique=False)
        batch_op.create_index("ix_fhir_exports_source", ["source", "source_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fhir_exports", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_exports_source")
        batch_op.drop_index("ix_fhir_exports_state_retry")
    op.drop_table("fhir_exports")
