"""The outbox state machine, and the only code that writes outbox rows.

States (``checkin.states.OutboxStatus``) and the function that makes each move::

    pending ─claim─► sending ─mark_sent──────────► sent
       ▲               ├─retry_later (transient)─► pending (after backoff; dead_letter after the limit)
       │               ├─mark_in_doubt───────────► in_doubt ─confirm_sent | resend | abandon─►
       │               │                                       sent | pending | dead
       │               ├─dead_letter | hold_refused (the patient opted out) ─► dead | held
       │               └─re-check at send: skip | hold | cancel | defer | reject
       └──release | release_stranded (stop, shutdown, a claim whose answer was lost)──┘
    pending ◄─release_sms_hold─ held ◄─hold_sms_for_opt_out─ pending   (STOP / START)
    pending | held ─skip_expired | cancel_unsent | cancel_alert_notifications─► skipped | cancelled

Every claim is committed before any provider call, and every later write to a claimed row is
a compare-and-set on ``status='sending' AND claimed_by=<this worker>``: a worker that lost its
lease (it was presumed dead and its row reconciled) can never overwrite what another decided.
Each transition writes its one audit action (``outbox.sent``, ``outbox.dead`` …).

Functions here take an open ``Session`` (or, on the send path, a ``Connection``) and never
commit: the caller owns the transaction. ``tests/db/test_state_ownership.py`` fails if any
other module writes outbox or alert rows.
"""

from __future__ import annotations

from checkin.store.outbox.answers import ANSWER_BINDS, ANSWER_SQL, OPEN_QUESTION, adopt_answer, mark_answered
from checkin.store.outbox.claims import (
    claim,
    due,
    in_doubt_reconcilable,
    overdue_count,
    owned,
    release,
    release_stranded,
    renew,
)
from checkin.store.outbox.pausing import PAUSED, hold_for_pause, release_pause
from checkin.store.outbox.policy import DEFAULT_POLICY, Policy, backoff
from checkin.store.outbox.recovery import (
    abandon,
    confirm_sent,
    look_again,
    mark_lost,
    raise_delivery_status,
    resend,
    sent_via_callback,
    strand,
)
from checkin.store.outbox.replies import REPLY_STEP, enqueue_email_reply
from checkin.store.outbox.sending import (
    RANK,
    SentRecord,
    confirm_refusal,
    dead_letter,
    first_status,
    fit_provider_id,
    hold_refused,
    mark_in_doubt,
    mark_sent,
    mark_sent_unrecorded,
    rank_below,
    rank_of,
    retry_later,
    unconfirmed,
)
from checkin.store.outbox.unsent import (
    OPTED_OUT,
    cancel,
    cancel_alert_notifications,
    cancel_rescheduled,
    cancel_unsent,
    defer,
    enqueue,
    hold,
    hold_sms_for_opt_out,
    mark_missed,
    mark_reminded,
    move,
    plan_email_fallback,
    record_reply,
    reject,
    release_sms_hold,
    skip,
    skip_expired,
)

__all__ = [
    "ANSWER_BINDS",
    "ANSWER_SQL",
    "DEFAULT_POLICY",
    "OPEN_QUESTION",
    "OPTED_OUT",
    "PAUSED",
    "RANK",
    "REPLY_STEP",
    "Policy",
    "SentRecord",
    "abandon",
    "adopt_answer",
    "backoff",
    "cancel",
    "cancel_alert_notifications",
    "cancel_rescheduled",
    "cancel_unsent",
    "claim",
    "confirm_refusal",
    "confirm_sent",
    "dead_letter",
    "defer",
    "due",
    "enqueue",
    "enqueue_email_reply",
    "first_status",
    "fit_provider_id",
    "hold",
    "hold_for_pause",
    "hold_refused",
    "hold_sms_for_opt_out",
    "in_doubt_reconcilable",
    "look_again",
    "mark_answered",
    "mark_in_doubt",
    "mark_lost",
    "mark_missed",
    "mark_reminded",
    "mark_sent",
    "mark_sent_unrecorded",
    "move",
    "overdue_count",
    "owned",
    "plan_email_fallback",
    "raise_delivery_status",
    "rank_below",
    "rank_of",
    "record_reply",
    "reject",
    "release",
    "release_pause",
    "release_sms_hold",
    "release_stranded",
    "renew",
    "resend",
    "retry_later",
    "sent_via_callback",
    "skip",
    "skip_expired",
    "strand",
    "unconfirmed",
]
