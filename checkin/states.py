"""The named states the database stores as strings.

Each enum's values are exactly the strings already in the tables (no migration): a
``StrEnum`` member compares equal to its stored string and binds as one, so queries and rows
read the same either way. Code names states through these enums, never through string
literals, so a typo is an ``AttributeError`` at import time instead of a silent mismatch.

The pure core (``checkin.core``) cannot import this module; where it needs a channel name or
a language it has its own ``Literal`` of the same values (``checkin.core.languages``,
``checkin.core.schedule.model.ChannelName``).
"""

from __future__ import annotations

from enum import StrEnum

from checkin.core.languages import DEFAULT_LANGUAGE, LANGUAGES, Language, supported_language

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "AlertKind",
    "AlertStatus",
    "ChannelName",
    "EnrollmentStatus",
    "Language",
    "OutboxStatus",
    "PhoneStatus",
    "StaffRole",
    "supported_language",
]


class ChannelName(StrEnum):
    """How a message travels (``outbox.channel``, ``enrollments.channel``,
    ``inbound_messages.channel``). Not to be confused with ``checkin.channels.Channel``, the
    sender that carries it."""

    SMS = "sms"
    EMAIL = "email"


class OutboxStatus(StrEnum):
    """``outbox.status``; the transitions are the functions of ``checkin.store.outbox``.

    Only ``pending`` rows are claimed; ``held`` rows wait for the patient to text START again;
    ``sending`` and ``in_doubt`` are being worked on; the rest are final.
    """

    PENDING = "pending"
    HELD = "held"
    SENDING = "sending"
    IN_DOUBT = "in_doubt"
    SENT = "sent"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    DEAD = "dead"


# Rows not yet handed to a provider and still meant to go.
OUTBOX_UNSENT: tuple[OutboxStatus, ...] = (OutboxStatus.PENDING, OutboxStatus.HELD)


class EnrollmentStatus(StrEnum):
    """``enrollments.status``: one live timeline per patient and procedure."""

    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class PhoneStatus(StrEnum):
    """``patients.phone_status``: what the SMS provider told us about the number."""

    OK = "ok"
    INVALID = "invalid"
    LANDLINE = "landline"


class AlertKind(StrEnum):
    """``alerts.kind``: why a nurse is asked to look at a patient."""

    RED_FLAG = "red_flag"
    MISSED_CHECKIN = "missed_checkin"
    CONTACT_PROBLEM = "contact_problem"
    # Something that needs a person (a reply, a watch-level alert) waited too long unhandled.
    WAITING = "waiting"


class AlertStatus(StrEnum):
    """``alerts.status``; the transitions are the functions of ``checkin.alerts.lifecycle``."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class StaffRole(StrEnum):
    """``staff.role``."""

    NURSE = "nurse"
    ADMIN = "admin"
    ON_CALL = "on_call"
