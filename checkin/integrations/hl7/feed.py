"""One HL7 v2 message in, its ACK out: idempotent by MSH-10, all or nothing.

``Feed.handle(text)`` is what a listener calls for every MLLP frame. The contract:

- ``AA`` only once the change and the message's ``hl7_messages`` entry are committed, in one
  transaction. The entry is inserted first, so a second listener handling the same message at
  the same time waits on its unique key and then answers with the first one's ACK (on
  PostgreSQL, however many listeners; SQLite has one writer anyway).
- A resent message (same sender, same MSH-10) gets the stored ACK byte for byte and changes
  nothing, whatever it got the first time.
- ``AE`` (ours but wrong, naming the field) and ``AR`` (not ours or not HL7) change nothing but
  their entry, which keeps the message for ``checkin hl7 errors`` / ``checkin hl7 replay``.
- Patient data stays in the database and the ACK: logs carry the entry id, type and outcome.
- A failure that is not the message's fault (the database is down) answers ``AE`` with
  nothing stored, so the engine's resend is handled afresh.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from checkin.clock import Clock
from checkin.core.hl7.ack import build_ack
from checkin.core.hl7.fields import INTERNAL_ERROR, Hl7Problem, Parsed, error
from checkin.core.hl7.mapping import Hl7Mapping
from checkin.core.hl7.message import Header, read_event, read_header
from checkin.core.schedule import Schedule
from checkin.errors import EnrollmentError
from checkin.integrations.hl7.apply import Site, apply, location_of
from checkin.store.consents import Provenance
from checkin.store.hl7_messages import ACCEPTED, ERROR, REJECTED, Hl7Message
from checkin.store.models import Patient

log = logging.getLogger("checkin.integrations.hl7")
ops = logging.getLogger("checkin.ops")
MAX_CONTROL_ID = 64
TRIES = 3
RETRYABLE = ("40P01", "40001")  # PostgreSQL: deadlock detected, serialization failure


class _Transient(Exception):
    """The transaction lost a race the database resolves by aborting one side: run it again."""


@dataclass(frozen=True)
class Outcome:
    ack: str
    code: str  # AA | AE | AR
    message_id: int | None  # the hl7_messages entry, None when nothing could be stored
    duplicate: bool = False
    problem: str | None = None  # "PID-13: …" for AE/AR (patient data: the ACK and database only)


class Feed:
    def __init__(
        self,
        sessions: Callable[[], Session],
        *,
        mapping: Hl7Mapping,
        schedules: Mapping[str, Schedule],
        site: Site,
        clock: Clock,
        one_at_a_time: bool = False,
    ) -> None:
        self.sessions, self.mapping, self.schedules = sessions, mapping, schedules
        self.site, self.clock = site, clock
        # SQLite has one writer: this process's connections take turns here instead of failing
        # on "database is locked" (PostgreSQL needs no such lock).
        self._turn: contextlib.AbstractContextManager[object] = (
            threading.Lock() if one_at_a_time else contextlib.nullcontext()
        )

    def handle(self, text: str) -> Outcome:
        """The ACK for ``text`` (see the module docstring)."""
        with self._turn:
            return self._handle(text)

    def _handle(self, text: str) -> Outcome:
        try:
            msg, header = read_header(text)
        except Hl7Problem as p:
            return self._record(None, text, p)
        key = (header.sender[:200], header.control_id[:MAX_CONTROL_ID] or None)
        if key[1] is not None:
            with self.sessions() as session:
                stored = self._stored(session, key)
            if stored is not None:
                log.info(
                    "hl7 resend",
                    extra={"event": "hl7.duplicate", "hl7_id": stored.id, "ack": stored.ack_code},
                )
                return Outcome(stored.ack, stored.ack_code, stored.id, duplicate=True, problem=stored.problem)
        for attempt in range(1, TRIES + 1):
            try:
                return self._accept(msg, header, text, key, last_try=attempt == TRIES)
            except Hl7Problem as p:
                return self._record(header, text, p)
            except _Transient:
                continue  # a deadlock or serialization failure: the whole transaction again
        raise AssertionError("unreachable: the last try never raises _Transient")

    def replay(self, message_id: int) -> Outcome:
        """Handle a stored rejected message again (after the mapping or the data was fixed); its
        entry takes the new outcome. Raises EnrollmentError for an unknown or accepted message."""
        with self.sessions() as session:
            entry = session.get(Hl7Message, message_id)
            if entry is None:
                raise EnrollmentError("id", f"no HL7 message {message_id}")
            if entry.outcome == ACCEPTED:
                raise EnrollmentError("id", f"HL7 message {message_id} was accepted already")
            text = entry.raw
        with self._turn:
            return self._replay(message_id, text)

    def _replay(self, message_id: int, text: str) -> Outcome:
        header: Header | None = None
        try:
            msg, header = read_header(text)
            return self._accept(msg, header, text, None, replaying=message_id)
        except Hl7Problem as p:
            return self._store_problem(header, p, replaying=message_id)

    # -- internals -----------------------------------------------------------------------------

    def _stored(self, session: Session, key: tuple[str, str | None]) -> Hl7Message | None:
        return session.scalar(
            select(Hl7Message).where(Hl7Message.sender == key[0], Hl7Message.control_id == key[1])
        )

    def _accept(
        self,
        msg: Parsed,
        header: Header,
        text: str,
        key: tuple[str, str | None] | None,
        *,
        replaying: int | None = None,
        last_try: bool = True,
    ) -> Outcome:
        event = read_event(msg, header, self.mapping)
        now = self.clock.now()
        ack = build_ack(header, "AA", ack_id=_ack_id(), now=now)
        session = self.sessions()
        try:
            with session.begin():
                if replaying is None:
                    assert key is not None
                    entry = _new_row(key, header, text, now)
                    session.add(entry)
                    session.flush()  # takes the unique key first: a concurrent twin waits here
                else:
                    again = session.get(Hl7Message, replaying, with_for_update=True)
                    assert again is not None
                    entry = again
                    if entry.outcome == ACCEPTED:  # replayed concurrently by someone else
                        return Outcome(
                            entry.ack, entry.ack_code, entry.id, duplicate=True, problem=entry.problem
                        )
                    entry.replays += 1
                mrn = apply(
                    session,
                    event,
                    mapping=self.mapping,
                    schedules=self.schedules,
                    site=self.site,
                    now=now,
                    consent=consent_of(header),
                )
                entry.outcome, entry.ack_code, entry.ack, entry.problem, entry.updated_at = (
                    ACCEPTED,
                    "AA",
                    ack,
                    None,
                    now,
                )
                if mrn is not None:
                    entry.patient_ref = session.scalar(select(Patient.reference).where(Patient.mrn == mrn))
                row_id, ref = entry.id, entry.patient_ref
        except EnrollmentError as e:
            problem = error(location_of(e.field, self.mapping), e.problem)
            return self._store_problem(header, problem, text=text, replaying=replaying)
        except IntegrityError as e:
            if key is not None:
                with self.sessions() as s:
                    stored = self._stored(s, key)
                if stored is not None:
                    return Outcome(
                        stored.ack, stored.ack_code, stored.id, duplicate=True, problem=stored.problem
                    )
            return self._internal(header, e)
        except SQLAlchemyError as e:
            if not last_try and getattr(getattr(e, "orig", None), "sqlstate", None) in RETRYABLE:
                raise _Transient from e
            return self._internal(header, e)
        finally:
            session.close()
        log.info(
            "hl7 message accepted",
            extra={
                "event": "hl7.accepted",
                "hl7_id": row_id,
                "type": header.kind,
                "patient_ref": ref,
                "replay": bool(replaying),
                "ignored": mrn is None,  # an ADT message about no patient checkin follows
            },
        )
        return Outcome(ack, "AA", row_id)

    def _record(self, header: Header | None, text: str, problem: Hl7Problem) -> Outcome:
        return self._store_problem(header, problem, text=text)

    def _store_problem(
        self, header: Header | None, problem: Hl7Problem, *, text: str = "", replaying: int | None = None
    ) -> Outcome:
        """Keep a refused message and its ACK; a concurrent twin's entry wins."""
        now = self.clock.now()
        ack = build_ack(header, problem.ack, ack_id=_ack_id(), now=now, problem=problem)
        status = ERROR if problem.ack == "AE" else REJECTED
        key = (header.sender[:200], header.control_id[:MAX_CONTROL_ID] or None) if header else ("", None)
        try:
            with self.sessions() as session, session.begin():
                if replaying is not None:
                    again = session.get(Hl7Message, replaying, with_for_update=True)
                    assert again is not None
                    entry = again
                    entry.replays += 1
                else:
                    entry = _new_row(key, header, text, now)
                    session.add(entry)
                entry.outcome, entry.ack_code, entry.ack, entry.problem, entry.updated_at = (
                    status,
                    problem.ack,
                    ack,
                    str(problem),
                    now,
                )
                session.flush()
                row_id = entry.id
        except IntegrityError as e:
            with self.sessions() as session:
                stored = self._stored(session, key)
            if stored is None:
                return self._internal(header, e)
            return Outcome(stored.ack, stored.ack_code, stored.id, duplicate=True, problem=stored.problem)
        except SQLAlchemyError as e:
            return self._internal(header, e)
        log.info(
            "hl7 message refused",
            extra={
                "event": "hl7.refused",
                "hl7_id": row_id,
                "ack": problem.ack,
                "code": problem.code,
                "location": problem.location,
            },
        )
        return Outcome(ack, problem.ack, row_id, problem=str(problem))

    def _internal(self, header: Header | None, exc: SQLAlchemyError) -> Outcome:
        # The driver's class and SQLSTATE only: its message may quote the values (PHI).
        sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
        ops.error(
            "hl7 message not handled: database error",
            extra={"event": "hl7.internal_error", "error": type(exc).__name__, "sqlstate": sqlstate},
        )
        problem = Hl7Problem("AE", None, "checkin could not store the message; send it again", INTERNAL_ERROR)
        return Outcome(
            build_ack(header, "AE", ack_id=_ack_id(), now=self.clock.now(), problem=problem), "AE", None
        )


def consent_of(header: Header) -> Provenance:
    """An HL7 enrollment's consent: recorded by the sending facility and the control id."""
    return Provenance("hl7", f"hl7:{header.sender} {header.control_id}", evidence=header.kind)


def _new_row(key: tuple[str, str | None], header: Header | None, text: str, now: datetime) -> Hl7Message:
    return Hl7Message(
        sender=key[0],
        control_id=key[1],
        message_type=header.kind[:16] if header else "",
        outcome=ERROR,
        ack_code="AE",
        ack="",
        raw=text,
        replays=0,
        received_at=now,
        updated_at=now,
    )


def _ack_id() -> str:
    return uuid.uuid4().hex[:20]
