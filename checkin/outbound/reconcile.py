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
is worse here. The duplicate would be recognisable downstream if the channel used the same
``Message-ID`` for every attempt of a row; today ``SmtpEmailChannel`` makes a fresh one per send
(see the hand-off notes). Channels without ``list_recent`` (console) are treated like email.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from checkin.channels import OutgoingMessage, ProviderMessage
from checkin.deps import Services
from checkin.errors import ChannelError, TemplateError
from checkin.outbound.delivery import RANK
from checkin.outbound.dispatch import build_message, load
from checkin.store import audit, outbox
from checkin.store.models import (
    OUTBOX_DEAD,
    OUTBOX_IN_DOUBT,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    OutboxMessage,
    Patient,
)
from checkin.store.outbox import DEFAULT_POLICY, Policy

log = logging.getLogger(__name__)


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
        .where(OutboxMessage.status == OUTBOX_SENDING, OutboxMessage.lease_until < now)
    ).all()
    if not rows:
        return 0
    live = outbox.live_workers(session, now, policy.stale_after)
    moved = 0
    for row_id, worker, lease_until, ref in rows:
        if worker in live and lease_until is not None and lease_until > now - policy.orphan_after:
            continue  # alive, probably waiting for a send slot: its lease renews before sending
        changed = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, outbox.owned(worker or ""), OutboxMessage.lease_until < now)
            .values(
                status=OUTBOX_IN_DOUBT,
                claimed_by=None,
                lease_until=None,
                next_attempt_at=None,
                status_reason=f"worker {worker} lost during the send"[:200],
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if changed:
            moved += 1
            audit.record(
                session,
                at=now,
                actor="system",
                action="outbox.in_doubt",
                patient_ref=ref,
                subject=f"outbox:{row_id}",
                worker=worker,
                reason="lease expired",
            )
            log.warning("outbox=%s ref=%s: worker %s lost it mid-send; reconciling", row_id, ref, worker)
    return moved


def _triage(
    session: Session, services: Services, ids: list[int], now: datetime, worker_id: str, policy: Policy
) -> list[_Lookup]:
    """Decide what needs no provider call; return the rows to look up at the provider."""
    lookups: list[_Lookup] = []
    for row, patient, enrollment in load(session, ids):
        attempted = row.last_attempt_at or row.updated_at
        if now - attempted >= policy.give_up:
            _resolve(
                session,
                row.id,
                worker_id,
                now,
                "outbox.dead",
                patient,
                status=OUTBOX_DEAD,
                status_reason=f"could not reconcile within {policy.give_up.total_seconds() / 3600:g} h",
            )
            log.error("ops: outbox=%s could not be reconciled; dead", row.id)
            continue
        channel = services.channel(row.channel)
        if row.channel != "sms" or not hasattr(channel, "list_recent"):
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
            _resolve(
                session, row.id, worker_id, now, None, patient, next_attempt_at=attempted + policy.settle
            )
            continue
        try:
            message = build_message(services, row, patient, enrollment)
        except TemplateError as exc:
            _resolve(
                session,
                row.id,
                worker_id,
                now,
                "outbox.dead",
                patient,
                status=OUTBOX_DEAD,
                status_reason=f"cannot reconcile: template error: {exc}"[:200],
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
            _resolve(session, lookup.row_id, worker_id, now, None, None, next_attempt_at=now + retry)
            log.warning(
                "outbox=%s ref=%s: provider list failed (%s); looking again in %.0fs",
                lookup.row_id,
                message.reference,
                error.reason,
                retry.total_seconds(),
            )
            return
        found = match(session, listed, message.text)
        if found is None:
            row = session.get(OutboxMessage, lookup.row_id)
            if row is not None:
                _resend(session, row, None, worker_id, now, policy, "not found at the provider; resending")
            return
        status = found.status if found.status in RANK else "queued"
        _resolve(
            session,
            lookup.row_id,
            worker_id,
            now,
            "outbox.sent",
            None,
            status=OUTBOX_SENT,
            provider_id=found.provider_id,
            sent_at=now,
            delivery_status=status,
            status_reason=None,
            next_attempt_at=None,
            detail={"provider_id": found.provider_id, "via": "reconciliation"},
        )
        log.info(
            "outbox=%s ref=%s: found at the provider (provider_id=%s); not resending",
            lookup.row_id,
            message.reference,
            found.provider_id,
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
        _resolve(
            session,
            row.id,
            worker_id,
            now,
            "outbox.dead",
            patient,
            status=OUTBOX_DEAD,
            status_reason=f"not confirmed after {row.attempts} attempts",
        )
        log.error("ops: outbox=%s unconfirmed after %d attempts; dead", row.id, row.attempts)
        return
    _resolve(
        session,
        row.id,
        worker_id,
        now,
        "outbox.resend",
        patient,
        status=OUTBOX_PENDING,
        status_reason=reason,
        next_attempt_at=None,
    )
    log.info("outbox=%s: %s", row.id, reason)


def _resolve(
    session: Session,
    row_id: int,
    worker_id: str,
    now: datetime,
    action: str | None,
    patient: Patient | None,
    *,
    detail: dict[str, object] | None = None,
    **values: object,
) -> bool:
    """Compare-and-set an ``in_doubt`` row this reconciler holds, drop the hold, audit."""
    changed = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == row_id,
            OutboxMessage.status == OUTBOX_IN_DOUBT,
            OutboxMessage.claimed_by == worker_id,
        )
        .values(claimed_by=None, lease_until=None, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if changed and action is not None:
        ref = (
            patient.reference
            if patient is not None
            else session.scalar(
                select(Patient.reference)
                .join(OutboxMessage, OutboxMessage.patient_id == Patient.id)
                .where(OutboxMessage.id == row_id)
            )
        )
        reason = values.get("status_reason")
        audit.record(
            session,
            at=now,
            actor="system",
            action=action,
            patient_ref=ref,
            subject=f"outbox:{row_id}",
            **({"reason": reason} if reason else {}),
            **(detail or {}),
        )
    return bool(changed)


__all__ = ["match", "reconcile_once", "take_stalled"]
