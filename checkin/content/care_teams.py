"""The care-team file of a deployment, re-read when it changes.

One ``CareTeamsFile`` per process, built by the composition root and reached through
``Services.care_teams``: the cache lives in that object, not in a module global, so two
services in one process (tests, the demo) never see each other's teams.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from checkin.core.care_teams import FILE_NAME, CareTeams, default_care_teams, load_care_teams

ops = logging.getLogger("checkin.ops")


class CareTeamsFile:
    """``directory/care-teams.yaml`` (or the default team built from ``alert_emails``)."""

    def __init__(self, directory: Path, alert_emails: Sequence[str]) -> None:
        self.directory = Path(directory)
        self.alert_emails = tuple(alert_emails)
        self._lock = threading.Lock()
        self._cached: tuple[int | None, CareTeams] | None = None

    def current(self) -> CareTeams:
        """The teams as the file says now. An invalid edit keeps the last good teams (or the
        default team): alerts must not stop because of a YAML typo; ``checkin schedules
        validate`` is where admins see the error."""
        try:
            mtime: int | None = (self.directory / FILE_NAME).stat().st_mtime_ns
        except OSError:
            mtime = None
        with self._lock:
            cached = self._cached
            if cached is not None and cached[0] == mtime:
                return cached[1]
            try:
                teams = load_care_teams(self.directory, self.alert_emails)
            except Exception as exc:  # noqa: BLE001 - any failure: keep alerting with what we had
                ops.error(
                    "care-team file unusable, keeping the previous teams",
                    extra={"event": "care_teams.unusable", "error": str(exc)},
                )
                teams = cached[1] if cached is not None else default_care_teams(self.alert_emails)
            self._cached = (mtime, teams)
            return teams
