"""Reconciliation: settle sends whose outcome we do not know, without ever resending blindly.

Two kinds of rows are in doubt:

* ``in_doubt``: the provider call ended ambiguously (HTTP 5xx, read timeout, connection lost
  after the request left): Twilio may have queued the message.
* ``sending`` whose lease has expired and whose worker is gone (no heartbeat for
  ``Policy.stale_after``, stopped, or, on this machine, its process no longer exists): the
  worker died somewhere between its claim and recording the outcome. These become
  ``in_doubt`` first. A lease far past its end (``Policy.orphan_after``) is taken back even from
  a worker that still beats.

For an SMS in doubt we ask Twilio (``list_recent(to, since=last_attempt_at - lookback)``) and
look for the same body that no other outbox row has claimed as its provider id:

* found → ``sent`` with that provider id (no resend);
* not found, once ``Policy.settle`` has passed since the attempt (Twilio lists a message only
  once it has a DateSent) → back to ``pending`` for one resend (``dead`` if attempts are spent);
* Twilio not answering → stay ``in_doubt``, look again after a backoff;
* unresolved ``Policy.give_up`` (24 h) after the attempt → ``dead`` ("could not reconcile").

Email in doubt (the connection died while DATA was in flight): SMTP has no way to ask the relay
what it queued. We resend, once per ambiguous attempt. A patient or nurse may then get the
same email twice; the alternative, dead-lettering, silently drops a reminder or an alert, which
is worse here. Every send of a row carries the same ``Message-ID`` (``SmtpEmailChannel``
derives it from the row), so mail systems can recognise the copy and drop it. Channels
without ``list_recent`` (console) are treated like email.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.channels import OutgoingMessage, ProviderMessage
from checkin.deps import Services
from checkin.errors import ChannelError, TemplateError
from checkin.outbound.recheck import build_message, load
from checkin.states import ChannelName, OutboxStatus
from checkin.store import outbox, workers
from checkin.store.models import (
    OutboxMessage,
    Patient,
)
from checkin.store.outbox import DEFAULT_POLICY, Policy

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")


@dataclass(frozen=True)
class _Lookup:
    row_id: int
    message: OutgoingMessage
    since: datetime


def reconcile_once(
    services: Services,
    now: datetime,
    *,
    worker_id: str,
    policy: Policy = DEFAULT_POLICY,
    limit: int = 100,
    rng: random.Random | None = None,
) -> int:
    """One reconciliation pass at ``now``; returns how many rows it moved or examined."""
    rng = rng or random.Random()
    with services.sessions() as session, session.begin():
        handled = take_stalled(session, now, policy)
    with services.sessions() as session, session.begin():
        ids = outbox.claim(
            session,
            now,
            worker_id=worker_id,
            limit=limit,
            lease=policy.lease,
            where=outbox.in_doubt_reconcilable(now),
            values={},
        )
        lookups = _triage(session, services, ids, now, worker_id, policy)
    for lookup in lookups:
        _look_up(services, lookup, now, worker_id, policy, rng)
    return handled + len(ids)


def take_stalled(session: Session, now: datetime, policy: Policy) -> int:
    """``sending`` rows whose lease ended and whose worker is gone become ``in_doubt``."""
    rows = session.execute(
        select(OutboxMessage.id, OutboxMessage.claimed_by, OutboxMessage.lease_until, Patient.reference)
        .outerjoin(Patient, Patient.id == OutboxMessage.patient_id)
        .where(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.lease_until < now)
    ).all()
    if not rows:
        return 0
    live = workers.live_workers(session, now, policy.stale_after)
    moved = 0
    for row_id, worker, lease_until, ref in rows:
        if worker in live and lease_until is not None and lease_until > now - policy.orphan_after:
            continue  # alive, probably waiting for a send slot: its lease renews before sending
        if outbox.mark_lost(session, row_id, worker=worker, now=now, patient_ref=ref):
            moved += 1
            log.warning(
                "worker lost the row mid-send; reconciling",
                extra={
                    "event": "outbox.in_doubt",
                    "outbox_id": row_id,
                    "patient_ref": ref,
                    "worker_id": worker,
                },
            )
    return moved


def _triage(
    session: Session, services: Services, ids: list[int], now: datetime, worker_id: str, policy: Policy
) -> list[_Lookup]:
    """Decide what needs no provider call; return the rows to look up at the provider."""
    lookups: list[_Lookup] = []
    for row, patient, enrollment in load(session, ids):
        attempted = row.last_attempt_at or row.updated_at
        if now - attempted >= policy.give_up:
            outbox.abandon(
                session,
                row.id,
                reconciler=worker_id,
                now=now,
                reason=f"could not reconcile within {policy.give_up.total_seconds() / 3600:g} h",
                patient_ref=_ref(patient),
            )
            ops.error("could not be reconciled; dead", extra={"event": "outbox.dead", "outbox_id": row.id})
            continue
        channel = services.channel(row.channel)
        if row.channel != ChannelName.SMS or not hasattr(channel, "list_recent"):
            _resend(
                session,
                row,
                patient,
                worker_id,
                now,
                policy,
                "outcome unknowable for this channel; resending",
            )
            continue
        if now < attempted + policy.settle:
            outbox.look_again(session, row.id, reconciler=worker_id, now=now, at=attempted + policy.settle)
            continue
        try:
            message = build_message(services, row, patient, enrollment)
        except TemplateError as exc:
            outbox.abandon(
                session,
                row.id,
                reconciler=worker_id,
                now=now,
                reason=f"cannot reconcile: template error: {exc}",
                patient_ref=_ref(patient),
            )
            continue
        lookups.append(_Lookup(row.id, message, attempted - policy.lookback))
    return lookups


def _look_up(
    services: Services, lookup: _Lookup, now: datetime, worker_id: str, policy: Policy, rng: random.Random
) -> None:
    message = lookup.message
    try:
        listed: list[ProviderMessage] = services.sms.list_recent(  # type: ignore[attr-defined]
            message.to, lookup.since
        )
        error: ChannelError | None = None
    except ChannelError as exc:
        listed, error = [], exc
    with services.sessions() as session, session.begin():
        if error is not None:
            retry = outbox.backoff(1, policy, rng, error.retry_after)
            outbox.look_again(session, lookup.row_id, reconciler=worker_id, now=now, at=now + retry)
            log.warning(
                "provider list failed; looking again later",
                extra={
                    "event": "reconcile.list_failed",
                    "outbox_id": lookup.row_id,
                    "patient_ref": message.reference,
                    "reason": error.reason,
                    "delay_s": round(retry.total_seconds()),
                },
            )
            return
        found = match(session, listed, message.text)
        if found is None:
            row = session.get(OutboxMessage, lookup.row_id)
            if row is not None:
                _resend(session, row, None, worker_id, now, policy, "not found at the provider; resending")
            return
        outbox.confirm_sent(
            session,
            lookup.row_id,
            reconciler=worker_id,
            now=now,
            provider_id=found.provider_id,
            provider_status=found.status,
        )
        log.info(
            "found at the provider; not resending",
            extra={
                "event": "outbox.sent",
                "outbox_id": lookup.row_id,
                "patient_ref": message.reference,
                "provider_id": found.provider_id,
            },
        )


def match(session: Session, listed: list[ProviderMessage], text: str) -> ProviderMessage | None:
    """The oldest listed message with our body whose provider id no outbox row has taken."""
    same = [m for m in listed if m.provider_id and (m.body == text or m.body.endswith(text))]
    if not same:
        return None
    taken = set(
        session.scalars(
            select(OutboxMessage.provider_id).where(
                OutboxMessage.provider_id.in_([m.provider_id for m in same])
            )
        )
    )
    free = [m for m in same if m.provider_id not in taken]
    free.sort(key=lambda m: (m.date_created is None, m.date_created or datetime.min))
    return free[0] if free else None


def _resend(
    session: Session,
    row: OutboxMessage,
    patient: Patient | None,
    worker_id: str,
    now: datetime,
    policy: Policy,
    reason: str,
) -> None:
    if row.attempts >= policy.max_attempts:
        outbox.abandon(
            session,
            row.id,
            reconciler=worker_id,
            now=now,
            reason=f"not confirmed after {row.attempts} attempts",
            patient_ref=_ref(patient),
        )
        ops.error(
            "unconfirmed after the last attempt; dead",
            extra={"event": "outbox.dead", "outbox_id": row.id, "attempt": row.attempts},
        )
        return
    outbox.resend(session, row.id, reconciler=worker_id, now=now, reason=reason, patient_ref=_ref(patient))
    log.info("resending", extra={"event": "outbox.resend", "outbox_id": row.id, "reason": reason})


def _ref(patient: Patient | None) -> str | None:
    return patient.reference if patient is not None else None


__all__ = ["match", "reconcile_once", "take_stalled"]
