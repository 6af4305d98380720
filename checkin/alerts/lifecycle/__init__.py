"""Care-team alerts: the only writer of alert state (``tests/db/test_state_ownership.py``).

An alert is *unresolved* while its status is ``open`` or ``acknowledged``. Per patient and kind
there is at most one unresolved alert: a later red flag joins it instead of opening a second
(storm suppression: five worried texts in ten minutes are one alert, not five pages).

The package is split by concern, one writer all the same:

- ``raising``: open or join an alert (``raise_or_join`` and its callers for assessments,
  contact problems and missed check-ins), and when a join tells someone again;
- ``ladder``: the escalation ladder's compare-and-set steps, read and advanced by
  ``checkin.alerts.notify.escalate``;
- ``staff``: acknowledge, resolve, assign, each audited under the signed-in person.

Functions add to the caller's session and never commit. On PostgreSQL two replies from the same
patient may be processed at once; ``checkin.inbound.process`` locks the patient row first, so the
find-or-open is not racy (on SQLite the write transaction already serializes).
"""

from __future__ import annotations

from checkin.alerts.lifecycle.ladder import end_ladder, take_news, take_step
from checkin.alerts.lifecycle.raising import (
    MAX_NOTE,
    UNRESOLVED,
    AlertChange,
    alert_flags,
    alert_severity,
    open_contact_problem,
    open_contact_problem_for,
    open_missed_checkin,
    open_waiting,
    raise_for_assessment,
    raise_or_join,
    rank,
    unresolved,
)
from checkin.alerts.lifecycle.staff import StaffAction, acknowledge, assign, resolve

__all__ = [
    "MAX_NOTE",
    "UNRESOLVED",
    "AlertChange",
    "StaffAction",
    "acknowledge",
    "alert_flags",
    "alert_severity",
    "assign",
    "end_ladder",
    "open_contact_problem",
    "open_contact_problem_for",
    "open_missed_checkin",
    "open_waiting",
    "raise_for_assessment",
    "raise_or_join",
    "rank",
    "resolve",
    "take_news",
    "take_step",
    "unresolved",
]
