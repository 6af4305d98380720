"""Resources waiting to be written to the EHR's FHIR server, and what became of them.

One row per resource identifier (``obs-<inbound id>-pain``, ``flag-<alert id>``): a Flag whose
alert changed is the same row made pending again with the new payload. ``state`` is
``pending`` (due at ``retry_at``; a claim pushes that forward as a lease), ``sent`` or
``dead`` (refused by the server for a reason retrying cannot fix). Written only by
``checkin.integrations.fhir``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from checkin.store.models import Base, BigId, UtcDateTime

PENDING, SENT, DEAD = "pending", "sent", "dead"


class FhirExport(Base):
    __tablename__ = "fhir_exports"
    __table_args__ = (
        Index("ix_fhir_exports_state_retry", "state", "retry_at"),
        Index("ix_fhir_exports_source", "source", "source_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(64), unique=True)
    resource_type: Mapped[str] = mapped_column(String(32))  # Observation | Flag
    source: Mapped[str] = mapped_column(String(16))  # inbound | alert
    source_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(8), default=PENDING)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
    source_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the alert's, for Flags
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    written_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
