"""Recording a failed send, and acting on what a permanent refusal says about the patient.

The channel has already translated the provider's answer into ``ChannelError``'s neutral
terms; nothing here knows a provider code. In order:

- ``ambiguous`` (a 5xx, a read timeout): ``in_doubt``, reconciled before any resend.
- ``permanent``: the first time a row gets a refusal that a relay or an account refusing
  everyone would also give (``breaker.BURSTABLE``), ``pending`` again, its attempt uncounted,
  to be asked once more (``Policy.confirm_refusal`` later): a single refusal cannot be told
  from a relay-wide one when it arrives, and by the retry the circuit breaker has seen the
  others or the relay is sending again. The same refusal again (``outbox.unconfirmed`` is the
  row's memory of it) is final: ``dead``, or ``held`` when the patient opted out (and then every pending SMS
  of theirs is held until they text START). A bad or landline number also marks the patient's
  phone, plans the same step by email and opens a contact-problem alert; an address the
  provider cannot deliver to opens the alert too.
- transient: ``pending`` again after a jittered backoff (``dead`` after ``Policy.max_attempts``);
  a ``retry_after`` also holds the sender's rate slot that long for every worker.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.deps import Services
from checkin.errors import ChannelError, Refusal
from checkin.outbound.breaker import BURSTABLE
from checkin.outbound.delivery import open_contact_problem
from checkin.outbound.ratelimit import hold_sender
from checkin.outbound.recheck import Prepared
from checkin.states import ChannelName, PhoneStatus
from checkin.store import audit, outbox
from checkin.store.models import OutboxMessage, Patient
from checkin.store.outbox import Policy

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")

# What a refused number means for ``patients.phone_status``.
PHONE_STATUS = {Refusal.BAD_ADDRESS: PhoneStatus.INVALID, Refusal.NOT_MOBILE: PhoneStatus.LANDLINE}


def record_failure(
    session: Session,
    services: Services,
    p: Prepared,
    error: ChannelError,
    now: datetime,
    worker_id: str,
    policy: Policy,
    rng: random.Random,
) -> None:
    """Record a failed send of a row this worker claimed (a receipt goes through
    ``checkin.outbound.receipts``)."""
    fields = _fields(p, error)
    if error.ambiguous:
        ours = outbox.mark_in_doubt(
            session,
            p.row_id,
            reason=error.reason,
            **_attempt(p, error, worker_id, now),
        )
        log.warning(
            "send outcome unknown; reconciling before any resend",
            extra={"event": "outbox.in_doubt", **fields},
        )
    elif error.permanent and _unconfirmed(session, p, error):
        ours = outbox.confirm_refusal(
            session,
            p.row_id,
            at=now + policy.confirm_refusal,
            reason=f"{error.reason}; asking once more before giving up",
            **_attempt(p, error, worker_id, now),
        )
        log.info(
            "refused; asking once more before giving up",
            extra={"event": "outbox.confirming", **fields},
        )
    elif error.permanent:
        ours = _permanent(session, services, p, error, now, worker_id)
    elif p.attempts >= policy.max_attempts:
        reason = f"gave up after {p.attempts} attempts: {error.reason}"
        ours = outbox.dead_letter(
            session,
            p.row_id,
            reason=reason,
            **_attempt(p, error, worker_id, now),
        )
        ops.error("dead after the last attempt", extra={"event": "outbox.dead", **fields})
    else:
        delay = outbox.backoff(p.attempts, policy, rng, error.retry_after)
        ours = outbox.retry_later(
            session,
            p.row_id,
            at=now + delay,
            reason=error.reason,
            **_attempt(p, error, worker_id, now),
        )
        if error.retry_after and p.rate_key is not None:
            hold_sender(session, p.rate_key, now + timedelta(seconds=error.retry_after))
        log.info(
            "send failed; retrying later",
            extra={"event": "outbox.retry", "delay_s": round(delay.total_seconds()), **fields},
        )
    if not ours:
        log.warning(
            "row not ours any more; outcome not recorded", extra={"event": "outbox.lost_lease", **fields}
        )


def _unconfirmed(session: Session, p: Prepared, error: ChannelError) -> bool:
    """Whether this permanent refusal is the row's first of its kind and may be the relay's
    answer to everyone (an opt-out never is: it is acted on at once)."""
    if error.refusal not in BURSTABLE:
        return False
    last = session.scalar(select(OutboxMessage.last_error_code).where(OutboxMessage.id == p.row_id))
    return last != outbox.unconfirmed(error.code)


def _permanent(
    session: Session, services: Services, p: Prepared, error: ChannelError, now: datetime, worker_id: str
) -> bool:
    """A permanent refusal: stop retrying and act on what it says about the patient."""
    fields = _fields(p, error)
    patient = session.get(Patient, p.patient_id) if p.patient_id is not None else None
    sms = p.message.channel == ChannelName.SMS
    if sms and error.refusal is Refusal.OPTED_OUT and patient is not None:
        # The patient texted STOP to our number: the provider refuses every SMS until START.
        why = outbox.OPTED_OUT + (f" ({error.code})" if error.code else "")
        ours = outbox.hold_refused(
            session,
            p.row_id,
            reason=why,
            **_attempt(p, error, worker_id, now),
        )
        held = outbox.hold_sms_for_opt_out(
            session, patient, now=now, actor="system", source="provider refusal", subject=f"outbox:{p.row_id}"
        )
        log.warning(
            "patient opted out of SMS; pending SMS held",
            extra={"event": "patient.sms_opted_out", "held": held, **fields},
        )
        return ours

    ours = outbox.dead_letter(
        session,
        p.row_id,
        reason=error.reason,
        **_attempt(p, error, worker_id, now),
    )
    log.warning("refused permanently; dead", extra={"event": "outbox.dead", **fields})
    if patient is None:
        ops.error(
            "a message to staff was refused permanently", extra={"event": "outbox.staff_refused", **fields}
        )
        return ours
    phone_status = PHONE_STATUS.get(error.refusal)
    if sms and phone_status is not None:
        patient.phone_status = phone_status
        audit.record(
            session,
            at=now,
            actor="system",
            action="patient.phone_flagged",
            patient_ref=patient.reference,
            subject=f"outbox:{p.row_id}",
            phone_status=phone_status,
            code=error.code,
        )
        row = session.get(OutboxMessage, p.row_id)
        if row is not None:
            outbox.plan_email_fallback(
                session,
                row,
                patient,
                now=now,
                email_template_exists=services.renderer.exists(
                    row.message, patient.language, ChannelName.EMAIL
                ),
            )
        open_contact_problem(
            session,
            patient.id,
            p.enrollment_id,
            now=now,
            reason=f"SMS refused: {error.code} (number {phone_status})",
        )
    elif error.refusal is Refusal.UNREACHABLE:
        open_contact_problem(
            session,
            patient.id,
            p.enrollment_id,
            now=now,
            reason=f"{p.message.channel} refused by the provider with {error.code}",
        )
    return ours


class _Attempt(TypedDict):
    """The keywords every ``sending`` → ... transition of ``checkin.store.outbox`` takes."""

    code: str | None
    worker_id: str
    now: datetime
    patient_ref: str | None
    attempt: int


def _attempt(p: Prepared, error: ChannelError, worker_id: str, now: datetime) -> _Attempt:
    return _Attempt(
        code=error.code, worker_id=worker_id, now=now, patient_ref=p.patient_ref, attempt=p.attempts
    )


def _fields(p: Prepared, error: ChannelError) -> dict[str, object]:
    return {
        "outbox_id": p.row_id,
        "patient_ref": p.message.reference,
        "channel": p.message.channel,
        "attempt": p.attempts,
        "refusal": error.refusal,
        "code": error.code,
        "reason": error.reason,
    }


__all__ = ["PHONE_STATUS", "record_failure"]
