"""Which patients a member of staff may see: those of their care team (admins: all).

A patient's team is the care team of their latest enrollment; an enrollment without one
belongs to the care-team file's default team.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select

from checkin.staff.signin import Current
from checkin.store.models import Enrollment, Patient


def team_column(default_team: str) -> Any:
    """A correlated scalar: the team of ``Patient`` in the enclosing query."""
    latest = (
        select(Enrollment.care_team)
        .where(Enrollment.patient_id == Patient.id)
        .order_by(Enrollment.created_at.desc(), Enrollment.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(latest, default_team)


def visible(who: Current, default_team: str, team_filter: str | None = None) -> ColumnElement[bool] | None:
    """The WHERE clause limiting a query over ``Patient`` to what ``who`` may see (None: all)."""
    teams = None if who.is_admin else {who.team}
    if team_filter:
        teams = {team_filter} if teams is None or team_filter in teams else set()
    if teams is None:
        return None
    clause: ColumnElement[bool] = team_column(default_team).in_(sorted(teams))
    return clause


def may_see(who: Current, team: str) -> bool:
    return who.is_admin or who.team == team
