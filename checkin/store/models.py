"""SQLAlchemy 2 typed models. The outbox table *is* the timeline: one row per planned message.

Times are stored as UTC. SQLite has no time-zone-aware type, so ``UtcDateTime`` stores naive
UTC and hands back aware UTC datetimes on both databases; code never sees a naive datetime.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from checkin.core.languages import DEFAULT_LANGUAGE
from checkin.states import (
    AlertStatus,
    ChannelName,
    EnrollmentStatus,
    OutboxStatus,
    PhoneStatus,
    StaffRole,
)

# Named constraints make Alembic migrations reproducible on both SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT primary keys on PostgreSQL, but SQLite only autoincrements "INTEGER PRIMARY KEY".
BigId = BigInteger().with_variant(Integer(), "sqlite")


@functools.lru_cache(maxsize=65536)
def sqlite_utc_text(value: datetime) -> str:
    # SQLite compares these as text, so every value must have the same shape (microseconds
    # always present), exactly as SQLAlchemy's own SQLite DATETIME writes them.
    u = value.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d} {u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond:06d}"
    )


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # Bulk planning binds millions of datetimes, most of them repeated (patients share
        # due times); converting each once is most of the cost, so it is cached.
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            return sqlite_utc_text(value)

        return process

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        # SQLite's binds go through ``bind_processor``; this is the other backends' path.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The only identifier that may appear in logs and email subjects.
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    mrn: Mapped[str] = mapped_column(String(64), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    email_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(5), default=DEFAULT_LANGUAGE)
    timezone: Mapped[str] = mapped_column(String(64))
    sms_opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    phone_status: Mapped[str] = mapped_column(String(16), default=PhoneStatus.OK)
    # Set while a nurse has paused the patient's messages (checkin.enrollment.pause).
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    enrollments: Mapped[list[Enrollment]] = relationship(back_populates="patient")


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        # One live timeline per patient and procedure; a withdrawn one may be followed by another.
        Index(
            "uq_enrollments_active_procedure",
            "patient_id",
            "procedure",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    procedure: Mapped[str] = mapped_column(String(64))
    schedule_version: Mapped[str] = mapped_column(String(32))
    surgery_date: Mapped[date] = mapped_column(Date)
    # Discharge-anchored steps count from this; None until someone records it.
    discharge_date: Mapped[date | None] = mapped_column(Date)
    attributes: Mapped[list[str]] = mapped_column(JSON, default=list)
    channel: Mapped[str] = mapped_column(String(8), default=ChannelName.SMS)
    care_team: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=EnrollmentStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    patient: Mapped[Patient] = relationship(back_populates="enrollments")


APPOINTMENT_BOOKED = "booked"
APPOINTMENT_CANCELLED = "cancelled"


class Appointment(Base):
    """A visit an enrollment's steps may count from (``anchor: <kind>``). At most one booked
    appointment per kind; moving it updates the row, cancelling keeps it as history."""

    __tablename__ = "appointments"
    __table_args__ = (
        Index(
            "uq_appointments_booked_kind",
            "enrollment_id",
            "kind",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # first_visit, six_week_visit, ...
    at: Mapped[datetime] = mapped_column(UtcDateTime)  # the instant; shown in the patient's zone
    # Free text shown to the patient; checkin.enrollment.anchors caps what goes into texts.
    location: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default=APPOINTMENT_BOOKED)  # booked | cancelled
    source: Mapped[str] = mapped_column(String(16), default="cli")  # cli | csv | hl7 | web
    external_id: Mapped[str | None] = mapped_column(String(64))  # e.g. the EHR's appointment id
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_due", "status", "due_at"),
        # Only sent rows have a provider id; a partial index costs nothing when planning.
        Index(
            "ix_outbox_provider_id",
            "provider_id",
            sqlite_where=text("provider_id IS NOT NULL"),
            postgresql_where=text("provider_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # enrollment:step:occurrence:channel; the idempotency key that makes re-planning an upsert.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    step_id: Mapped[str] = mapped_column(String(64))
    occurrence: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(String(64))  # template name
    ask: Mapped[str | None] = mapped_column(String(32))
    # For staff notifications and replies that are not timeline steps.
    recipient: Mapped[str | None] = mapped_column(String(254))
    body: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(300))
    html: Mapped[str | None] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)  # may go outside the send window
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    remind_after_s: Mapped[int | None] = mapped_column(Integer)
    missed_after_s: Mapped[int | None] = mapped_column(Integer)
    # The visit an appointment reminder is about, fixed when planned so the text rendered at
    # send time (and re-rendered by reconciliation) does not depend on a later lookup.
    followup_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    followup_where: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)  # OutboxStatus
    status_reason: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    provider_id: Mapped[str | None] = mapped_column(String(64))
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When the care team was told this check-in went unanswered (at most once).
    missed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When the last attempt was committed as ``sending``: reconciliation asks the provider for
    # messages to this recipient since then, before it ever sends again.
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error_code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeliveryEvent(Base):
    """One provider status callback. Callbacks repeat and arrive out of order, so they are kept
    append-only, one row per (provider id, status), and the outbox's status is derived by rank."""

    __tablename__ = "delivery_events"
    __table_args__ = (UniqueConstraint("provider_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(64))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Worker(Base):
    """A running ``checkin worker``: heartbeats show it is alive; on SQLite at most one runs."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # host:pid:random
    host: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RateLimit(Base):
    """Send slots per sender shared by every worker: ``next_free_at`` is the earliest instant
    the next message from that sender may go, so N workers together keep CHECKIN_SMS_RATE."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_free_at: Mapped[datetime] = mapped_column(UtcDateTime)


# Replies waiting for a person in the console's inbox (checkin.app.web.console.worklist): a
# partial index, so the inbox reads a few rows whatever the size of the message history.
NEEDS_PERSON = (
    "handled_at IS NULL AND patient_id IS NOT NULL AND (keyword IS NULL OR keyword = 'stop') "
    "AND (severity IS NULL OR severity IN ('none', 'watch')) "
    "AND (severity = 'watch' OR outbox_id IS NULL OR body LIKE '%?%' OR keyword = 'stop')"
)


class InboundMessage(Base):
    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index(
            "ix_inbound_needs_person",
            "received_at",
            sqlite_where=text(NEEDS_PERSON),
            postgresql_where=text(NEEDS_PERSON),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Twilio's MessageSid (or a web-form token id): the same reply is processed once.
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(8), default=ChannelName.SMS)
    # 64: Twilio's From can be a channel address (whatsapp:+15551234567), not only E.164.
    from_phone: Mapped[str | None] = mapped_column(String(64), index=True)
    body: Mapped[str] = mapped_column(Text)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))  # the question answered
    keyword: Mapped[str | None] = mapped_column(String(16))
    severity: Mapped[str | None] = mapped_column(String(16))
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    assessment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When a person dealt with it from the console inbox (None: still waiting, if it needs one).
    handled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(254))


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_status_next", "status", "next_escalation_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id"))
    kind: Mapped[str] = mapped_column(String(24))  # checkin.states.AlertKind
    severity: Mapped[str] = mapped_column(String(16))
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.OPEN)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    # Which notification round the ladder is in: bumped by checkin.alerts.lifecycle when a new
    # red flag re-opens the alert, so the new round's outbox keys differ from the last one's.
    escalation_round: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A new red flag on the open alert, not yet told to step 0's people (the ladder keeps its
    # own clock); cleared by the sweep that tells them, or by an acknowledgement.
    news_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(254))
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(254))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))  # the missed check-in
    # The nurse who took it ("assign to me"); the team is told when this is None.
    assigned_to: Mapped[str | None] = mapped_column(String(254))


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(16), default=StaffRole.NURSE)
    team: Mapped[str] = mapped_column(String(64), default="default")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # argon2id hash; None until the one-time set-password link is used.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # sha256 of the outstanding set-password token's nonce: the link works once.
    setup_nonce: Mapped[str | None] = mapped_column(String(64))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random token; only its sha256 is stored, so a
    copy of the database cannot be used to sign in. Revoked by setting ``revoked_at``."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)  # absolute limit, whatever the activity
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SignInAttempt(Base):
    """Every sign-in attempt: failures in the last window throttle per account and per address."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index("ix_sign_in_attempts_email_at", "email", "at"),
        Index("ix_sign_in_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(32))


class StaffNote(Base):
    """A note about a patient by a member of staff (clinical text: shown on the patient page,
    never copied into the audit log)."""

    __tablename__ = "staff_notes"
    __table_args__ = (Index("ix_staff_notes_patient_at", "patient_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    author: Mapped[str] = mapped_column(String(254))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    text: Mapped[str] = mapped_column(Text)


class AuditEvent(Base):
    """Append-only: the ORM refuses updates and deletes, and database triggers back that up."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(254))  # "system", "cli:<user>", a nurse's email
    action: Mapped[str] = mapped_column(String(64))
    patient_ref: Mapped[str | None] = mapped_column(String(16), index=True)
    subject: Mapped[str | None] = mapped_column(String(64))  # e.g. "outbox:42"
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent):
            raise AppendOnlyError("audit_log is append-only")
