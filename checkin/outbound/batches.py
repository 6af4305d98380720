"""Claiming a batch for the dispatcher: claim due rows of channels whose circuit is closed,
re-check and render each in the claim's transaction, and move at once the rows that must not
go now. ``Claims`` gives a dispatch step its next batch while the current one is being sent
(``checkin.outbound.pipeline``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from checkin.deps import Services
from checkin.errors import TemplateError
from checkin.outbound.breaker import Breakers
from checkin.outbound.pipeline import Refill
from checkin.outbound.recheck import (
    Prepared,
    Verdict,
    build_message,
    load,
    recheck,
    sender_key,
    to_patient,
    window_for,
)
from checkin.states import ChannelName, OutboxStatus
from checkin.store import outbox
from checkin.store.models import OutboxMessage, Patient
from checkin.store.outbox import Policy

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")


def claim_batch(
    session: Session,
    services: Services,
    now: datetime,
    worker_id: str,
    limit: int,
    policy: Policy,
    breakers: Breakers,
) -> tuple[list[int], list[Prepared]]:
    """Claim up to ``limit`` due rows of channels whose circuit is closed; their ids, and those
    to send now, re-checked and rendered (the others are moved in the same transaction)."""
    blocked = breakers.blocked(session, now)
    where = outbox.due(now) & OutboxMessage.channel.notin_(blocked) if blocked else None
    ids = outbox.claim(session, now, worker_id=worker_id, limit=limit, lease=policy.lease, where=where)
    return ids, (prepare(session, services, ids, now) if ids else [])


class Claims:
    """The next batch for ``pipeline.pump``, while the last claim came back full and within
    ``refill``'s bounds; None when the step should claim no more."""

    def __init__(
        self,
        services: Services,
        now: datetime,
        worker_id: str,
        limit: int,
        policy: Policy,
        breakers: Breakers,
        refill: Refill,
        stopping: Callable[[], bool],
    ) -> None:
        self.services, self.now, self.worker_id, self.limit = services, now, worker_id, limit
        self.policy, self.breakers, self.refill, self.stopping = policy, breakers, refill, stopping
        self.claimed = 0  # rows this step claimed
        self.full = False  # the last claim came back full: more may be due
        self._clock_at = services.clock.now()
        self._until = time.monotonic() + refill.seconds

    def __call__(self) -> list[Prepared] | None:
        if not self.full or self.claimed >= self.refill.rows or time.monotonic() > self._until:
            return None
        if self.stopping():
            return None
        now = self.now + (self.services.clock.now() - self._clock_at)
        try:
            with self.services.sessions() as session, session.begin():
                ids, ready = claim_batch(
                    session, self.services, now, self.worker_id, self.limit, self.policy, self.breakers
                )
        except Exception as exc:  # noqa: BLE001 - the rows already claimed are still sent
            # A claim whose answer was lost leaves rows `sending` that no thread holds: the next
            # step's ``release_stranded`` gives them back.
            ops.warning(
                "claiming the next batch failed; sending the rows already claimed",
                extra={
                    "event": "outbox.claim_failed",
                    "worker_id": self.worker_id,
                    "error": type(exc).__name__,
                },
            )
            return None
        self.count(len(ids))
        return ready

    def count(self, claimed: int) -> None:
        self.claimed += claimed
        self.full = claimed >= self.limit


def prepare(session: Session, services: Services, ids: Sequence[int], now: datetime) -> list[Prepared]:
    ready: list[Prepared] = []
    for row, patient, enrollment in load(session, ids):
        verdict = recheck(row, patient, enrollment, window_for(services, enrollment), now)
        if verdict is not None:
            apply_verdict(session, services, row, patient, verdict, now)
            continue
        try:
            message = build_message(services, row, patient, enrollment)
        except TemplateError as exc:
            # An admin's template broke: retrying cannot help, and ops must hear of it.
            ref = patient.reference if patient else None
            ops.error(
                "template error; row dead",
                extra={
                    "event": "outbox.template_error",
                    "outbox_id": row.id,
                    "patient_ref": ref,
                    "error": str(exc),
                },
            )
            outbox.reject(
                session, row, reason=f"template error: {exc}"[:200], now=now, patient_ref=ref, uncount=False
            )
            continue
        ready.append(
            Prepared(
                row_id=row.id,
                message=message,
                attempts=row.attempts,
                patient_id=row.patient_id if to_patient(row, patient) else None,
                enrollment_id=row.enrollment_id,
                rate_key=sender_key(services.settings, row.channel),
                claimed_at=now,
            )
        )
    return ready


_SETTLE = {
    OutboxStatus.SKIPPED: outbox.skip,
    OutboxStatus.HELD: outbox.hold,
    OutboxStatus.CANCELLED: outbox.cancel,
    OutboxStatus.DEAD: outbox.reject,
}


def apply_verdict(
    session: Session,
    services: Services,
    row: OutboxMessage,
    patient: Patient | None,
    verdict: Verdict,
    now: datetime,
) -> None:
    """Move a claimed row that must not go now to ``verdict``'s status (no provider call was
    made, so the claim's attempt is uncounted)."""
    ref = patient.reference if patient else None
    if verdict.status == OutboxStatus.PENDING:
        outbox.defer(session, row, until=verdict.retry_at, reason=verdict.reason, now=now, patient_ref=ref)
    else:
        _SETTLE[verdict.status](session, row, reason=verdict.reason, now=now, patient_ref=ref)
    log.info(
        "row not sent now",
        extra={
            "event": f"outbox.{verdict.status}",
            "outbox_id": row.id,
            "patient_ref": ref,
            "reason": verdict.reason,
        },
    )
    if verdict.email_fallback and patient is not None:
        outbox.plan_email_fallback(
            session,
            row,
            patient,
            now=now,
            email_template_exists=services.renderer.exists(row.message, patient.language, ChannelName.EMAIL),
        )


__all__ = ["Claims", "apply_verdict", "claim_batch", "prepare"]
