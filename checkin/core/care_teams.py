"""Care teams: who is told about an alert, and who next when nobody acknowledges it. Pure.

``schedules/care-teams.yaml`` (validated like schedules; every error is ``file:line: key:``)::

    default_team: spine
    teams:
      - id: spine
        name: Spine nurses
        nurses:
          - {name: Dana Reyes, email: dana@example.org, phone: "+15555550101"}
        on_call: {name: On-call spine nurse, email: oncall@example.org, phone: "+15555550199"}
        repeat_every: 30m           # the last urgent/emergency step repeats until acknowledged
        escalation:                 # per severity: steps, each `after` the alert opened
          emergency:
            - {after: 0m, notify: [team_email, on_call_sms]}
            - {after: 10m, notify: [on_call_sms]}
          urgent:
            - {after: 0m, notify: [team_email]}
            - {after: 15m, notify: [team_email]}
            - {after: 30m, notify: [on_call_sms]}
          watch:
            - {after: 0m, notify: [team_email]}

Without the file, the team ``default`` mails ``CHECKIN_ALERT_EMAILS`` with ``DEFAULT_LADDER``.

An unacknowledged urgent or emergency alert never goes quiet: after its ladder's last step,
that step repeats every ``repeat_every`` (default ``DEFAULT_REPEAT``; there is no "off").
Watch-level ladders do not repeat (the daily digest lists those alerts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from checkin.core.schedule.load import CARE_TEAMS_FILE, parse_duration
from checkin.core.schedule.yamlsource import LineMap, read_yaml
from checkin.errors import ScheduleError, ScheduleErrors

SEVERITIES = ("emergency", "urgent", "watch")
TARGETS = ("team_email", "on_call_sms", "on_call_email")
REPEATING = ("emergency", "urgent")
DEFAULT_REPEAT = timedelta(minutes=30)
MIN_REPEAT = timedelta(minutes=5)
FILE_NAME = CARE_TEAMS_FILE


@dataclass(frozen=True)
class Contact:
    name: str
    email: str | None
    phone: str | None


@dataclass(frozen=True)
class EscalationStep:
    after: timedelta
    notify: tuple[str, ...]


@dataclass(frozen=True)
class CareTeam:
    id: str
    name: str
    nurses: tuple[Contact, ...]
    on_call: Contact | None
    ladder: Mapping[str, tuple[EscalationStep, ...]]
    repeat_every: timedelta = DEFAULT_REPEAT

    def steps(self, severity: str) -> tuple[EscalationStep, ...]:
        return self.ladder.get(severity, ())

    def repeat(self, severity: str) -> timedelta | None:
        """How often the last step of ``severity``'s ladder repeats until acknowledged (None:
        the ladder ends after its last step)."""
        return self.repeat_every if severity in REPEATING else None

    @property
    def emails(self) -> tuple[str, ...]:
        return tuple(n.email for n in self.nurses if n.email)


DEFAULT_LADDER: Mapping[str, tuple[EscalationStep, ...]] = {
    "emergency": (
        EscalationStep(timedelta(0), ("team_email", "on_call_sms")),
        EscalationStep(timedelta(minutes=10), ("team_email", "on_call_sms")),
    ),
    "urgent": (
        EscalationStep(timedelta(0), ("team_email",)),
        EscalationStep(timedelta(minutes=15), ("team_email",)),
        EscalationStep(timedelta(minutes=30), ("on_call_sms",)),
    ),
    "watch": (EscalationStep(timedelta(0), ("team_email",)),),
}


@dataclass(frozen=True)
class CareTeams:
    teams: Mapping[str, CareTeam]
    default: str

    def for_name(self, name: str | None) -> CareTeam:
        """The named team, or the default one when the name is empty or unknown."""
        return self.teams.get(name or self.default) or self.teams[self.default]


def default_care_teams(alert_emails: Sequence[str]) -> CareTeams:
    nurses = tuple(Contact(name=e, email=e, phone=None) for e in alert_emails)
    team = CareTeam(id="default", name="Care team", nurses=nurses, on_call=None, ladder=DEFAULT_LADDER)
    return CareTeams(teams={"default": team}, default="default")


def load_care_teams(directory: Path, alert_emails: Sequence[str]) -> CareTeams:
    """``directory/care-teams.yaml`` if present, else the default team. Raises ScheduleErrors."""
    path = directory / FILE_NAME
    if not path.is_file():
        return default_care_teams(alert_emails)
    return parse_care_teams(path.read_text(encoding="utf-8"), str(path), alert_emails)


def parse_care_teams(text: str, filename: str, alert_emails: Sequence[str] = ()) -> CareTeams:
    data, problems = read_yaml(text)
    errors = [ScheduleError(filename, p.line, p.key, p.problem) for p in problems]
    if errors:
        raise ScheduleErrors(errors)

    def err(node: LineMap, key: str | None, problem: str) -> None:
        errors.append(ScheduleError(filename, node.line_of(key) if key else node.line, key, problem))

    if not isinstance(data, LineMap):
        raise ScheduleErrors([ScheduleError(filename, 1, None, "must be a mapping with `teams:`")])
    _unknown(data, ("default_team", "teams"), err)
    teams: dict[str, CareTeam] = {}
    raw_teams = data.get("teams")
    if not isinstance(raw_teams, list) or not raw_teams:
        err(data, "teams" if "teams" in data else None, "must be a non-empty list of teams")
        raw_teams = []
    for node in raw_teams:
        if not isinstance(node, LineMap):
            err(data, "teams", "each team must be a mapping")
            continue
        team = _team(node, err)
        if team is None:
            continue
        if team.id in teams:
            err(node, "id", f"team '{team.id}' is defined twice")
        teams[team.id] = team
    default = data.get("default_team", next(iter(teams), "default"))
    if not isinstance(default, str) or (teams and default not in teams):
        err(data, "default_team", f"'{default}' is not one of the teams ({', '.join(teams)})")
    if errors:
        raise ScheduleErrors(errors)
    return CareTeams(teams=teams, default=str(default))


def _unknown(node: LineMap, valid: tuple[str, ...], err: Any) -> None:
    for key in node:
        if key not in valid:
            err(node, str(key), f"unknown key; valid keys: {', '.join(valid)}")


def _contact(node: object, parent: LineMap, key: str, err: Any) -> Contact | None:
    if not isinstance(node, LineMap):
        err(parent, key, "must be a mapping with name, email and/or phone")
        return None
    _unknown(node, ("name", "email", "phone"), err)
    name, email, phone = node.get("name"), node.get("email"), node.get("phone")
    if not isinstance(name, str) or not name.strip():
        err(node, "name" if "name" in node else None, "a contact needs a name")
        return None
    if email is not None and (not isinstance(email, str) or "@" not in email):
        err(node, "email", f"'{email}' is not an email address")
        return None
    if phone is not None and (
        not isinstance(phone, str) or not phone.startswith("+") or not phone[1:].isdigit()
    ):
        err(node, "phone", f"'{phone}' must be a quoted E.164 number like \"+15555550101\"")
        return None
    if email is None and phone is None:
        err(node, None, f"contact '{name}' has neither email nor phone")
        return None
    return Contact(name=name, email=email, phone=phone)


def _team(node: LineMap, err: Any) -> CareTeam | None:
    _unknown(node, ("id", "name", "nurses", "on_call", "escalation", "repeat_every"), err)
    team_id = node.get("id")
    if not isinstance(team_id, str) or not team_id:
        err(node, "id" if "id" in node else None, "a team needs an id")
        return None
    nurses_raw = node.get("nurses")
    nurses: list[Contact] = []
    if not isinstance(nurses_raw, list) or not nurses_raw:
        err(node, "nurses" if "nurses" in node else None, "must be a non-empty list of nurses")
    else:
        for n in nurses_raw:
            c = _contact(n, node, "nurses", err)
            if c:
                nurses.append(c)
    on_call = _contact(node["on_call"], node, "on_call", err) if "on_call" in node else None
    ladder: dict[str, tuple[EscalationStep, ...]] = dict(DEFAULT_LADDER)
    esc = node.get("escalation")
    if esc is not None:
        if not isinstance(esc, LineMap):
            err(node, "escalation", "must map a severity to a list of steps")
        else:
            for severity in esc:
                if severity not in SEVERITIES:
                    err(esc, str(severity), f"unknown severity; use {', '.join(SEVERITIES)}")
                    continue
                steps = _ladder(esc[severity], esc, str(severity), err, on_call)
                if steps is not None:
                    ladder[str(severity)] = steps
    repeat_every = DEFAULT_REPEAT
    if "repeat_every" in node:
        parsed, problem = parse_duration(node["repeat_every"])
        if problem or parsed is None:
            err(node, "repeat_every", problem or "must be a duration such as 30m")
        elif parsed < MIN_REPEAT:
            err(node, "repeat_every", f"must be at least {int(MIN_REPEAT.total_seconds() // 60)}m")
        else:
            repeat_every = parsed
    return CareTeam(
        id=team_id,
        name=str(node.get("name") or team_id),
        nurses=tuple(nurses),
        on_call=on_call,
        ladder=ladder,
        repeat_every=repeat_every,
    )


def _ladder(
    raw: object, parent: LineMap, key: str, err: Any, on_call: Contact | None
) -> tuple[EscalationStep, ...] | None:
    if not isinstance(raw, list) or not raw:
        err(parent, key, "must be a non-empty list of {after, notify} steps")
        return None
    steps: list[EscalationStep] = []
    for item in raw:
        if not isinstance(item, LineMap):
            err(parent, key, "each step must be a mapping with after and notify")
            return None
        _unknown(item, ("after", "notify"), err)
        after_raw = item.get("after", "0m")
        after, problem = (timedelta(0), None) if after_raw in ("0m", "0h", "0") else parse_duration(after_raw)
        if problem:
            err(item, "after", problem)
            return None
        notify = item.get("notify")
        targets = [notify] if isinstance(notify, str) else notify
        if not isinstance(targets, list) or not targets or any(t not in TARGETS for t in targets):
            err(item, "notify", f"must name one or more of {', '.join(TARGETS)}")
            return None
        if on_call is None and any(t.startswith("on_call") for t in targets):
            err(item, "notify", "the team has no on_call contact")
            return None
        if steps and after is not None and after <= steps[-1].after:
            err(item, "after", "each step must come later than the one before")
            return None
        steps.append(EscalationStep(after=after or timedelta(0), notify=tuple(targets)))
    return tuple(steps)
