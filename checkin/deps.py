"""What application code receives: the ``Services`` bundle, built once per process.

Only the composition root (``checkin.app.bootstrap.build_services``) constructs it; everything
below ``checkin.app`` (outbound, inbound, alerts, enrollment, content, store) takes it as an
argument and imports this module, never the root. Tests build it through the same root with a
``ManualClock`` and in-memory channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from checkin.channels import Channel
from checkin.clock import Clock
from checkin.config import Settings
from checkin.content.care_teams import CareTeamsFile
from checkin.content.render import Renderer
from checkin.core.schedule import Schedule
from checkin.states import ChannelName


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    sms: Channel
    email: Channel
    renderer: Renderer
    schedules: dict[str, Schedule]
    care_teams: CareTeamsFile  # ``.current()``: the teams now, re-read when the file changes
    notes: list[str] = field(default_factory=list)  # what was chosen, announced at start-up

    def channel(self, name: str) -> Channel:
        if name == ChannelName.SMS:
            return self.sms
        if name == ChannelName.EMAIL:
            return self.email
        raise ValueError(f"unknown channel {name!r}")

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"
