"""The escalation ladder's state on the alert row, advanced by ``checkin.alerts.notify.escalate``.

``escalation_level`` is how many steps of the team's ladder for the alert's severity have been
issued, and ``next_escalation_at`` when the next one is due (None: ladder done, or the alert is
no longer open). Opening an alert, a severity rise, or a new red flag on an acknowledged alert
sets level 0 due *now* (``checkin.alerts.lifecycle.raising``): the caller issues step 0 in the
same transaction (``notify.alert_changed``); if a caller cannot (the delivery callback has no
renderer), the escalation sweep issues it on its next tick.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from checkin.states import AlertStatus
from checkin.store.db import rowcount
from checkin.store.models import Alert


def take_step(
    session: Session,
    alert: Alert,
    level: int,
    *,
    next_at: datetime | None,
    now: datetime,
    issued: int | None = None,
) -> bool:
    """Escalate an open ``alert`` from ``level`` to the one after ``issued`` (default
    ``level``; larger when overdue repeats are skipped), due again at ``next_at``: a
    compare-and-set on status, level, severity and round, so of two workers (or a worker and
    a nurse acknowledging, or a new red flag starting a round) exactly one wins. False if
    this caller lost."""
    new_level = (level if issued is None else issued) + 1
    won = rowcount(
        session.execute(
            update(Alert)
            .where(
                Alert.id == alert.id,
                Alert.status == AlertStatus.OPEN,
                Alert.escalation_level == level,
                Alert.severity == alert.severity,
                Alert.escalation_round == alert.escalation_round,
            )
            .values(escalation_level=new_level, next_escalation_at=next_at, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if won:
        set_committed_value(alert, "escalation_level", new_level)
        set_committed_value(alert, "next_escalation_at", next_at)
    return bool(won)


def end_ladder(session: Session, alert: Alert) -> None:
    """The ladder has no further step (finished, or shortened by a care-team edit): nothing
    more is scheduled for ``alert``."""
    session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.escalation_level == alert.escalation_level)
        .values(next_escalation_at=None)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(alert, "next_escalation_at", None)


def take_news(session: Session, alert: Alert, *, now: datetime) -> bool:
    """Claim the telling of ``alert.news_at`` (a new red flag on the open alert): a
    compare-and-set on status and round, so of two workers exactly one tells step 0's people,
    and an acknowledgement or a new round in between wins. False if this caller lost."""
    won = rowcount(
        session.execute(
            update(Alert)
            .where(
                Alert.id == alert.id,
                Alert.status == AlertStatus.OPEN,
                Alert.news_at.is_not(None),
                Alert.escalation_round == alert.escalation_round,
            )
            .values(news_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if won:
        set_committed_value(alert, "news_at", None)
    return bool(won)
