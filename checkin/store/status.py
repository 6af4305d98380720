"""Operational figures from the database: the same numbers for `/metrics` and `checkin status`.

Derived from the database rather than from in-process counters because the worker sends and
the web process serves `/metrics`: only the database sees both (and every worker).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from checkin.states import AlertStatus, OutboxStatus
from checkin.store.models import Alert, AuditEvent, InboundMessage, OutboxMessage, RateLimit, Worker

STATUSES = ("pending", "held", "sending", "in_doubt", "sent", "skipped", "cancelled", "dead")
SEVERITIES = ("emergency", "urgent", "watch", "none")
WORKER_FRESH = timedelta(seconds=30)
# Rate-limit rows the dispatcher's circuit breakers keep per channel (checkin.outbound.breaker):
# ``circuit:<channel>`` (open until), and ``circuit-since:<channel>`` (open since, until the
# "still open" operations alert is given).
CIRCUIT_PREFIX = "circuit:"
CIRCUIT_SINCE_PREFIX = "circuit-since:"
# Audit actions of the breakers' shared rows; the daily digest reads back the long outages.
CIRCUIT_OPENED = "channel.circuit_opened"
CIRCUIT_CLOSED = "channel.circuit_closed"
CIRCUIT_STILL_OPEN = "channel.circuit_still_open"
# A circuit open this long is an outage staff hear of (the breaker's ``STILL_OPEN``).
LONG_OUTAGE = timedelta(minutes=5)


@dataclass
class Figures:
    messages: dict[str, int] = field(default_factory=dict)
    oldest_due_seconds: float = 0.0  # how late the oldest due, unsent message is
    send_latency_p50: float | None = None  # seconds from claim to provider acceptance, last hour
    send_latency_p99: float | None = None
    lateness_p99: float | None = None  # seconds from due to sent, last hour
    sent_last_hour: int = 0
    inbound: dict[str, int] = field(default_factory=dict)
    alerts_open: dict[str, int] = field(default_factory=dict)
    escalations: int = 0
    workers_alive: int = 0
    expired_last_day: int = 0  # unsent rows skipped as expired in the last 24 h
    circuits_open: dict[str, datetime] = field(default_factory=dict)  # channel: next probe


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def collect(session: Session, now: datetime) -> Figures:
    f = Figures()
    counts = dict(
        session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    )
    f.messages = {s: int(counts.get(s, 0)) for s in STATUSES}
    oldest = session.scalar(
        select(func.min(OutboxMessage.due_at)).where(
            OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.due_at <= now
        )
    )
    f.oldest_due_seconds = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    recent = session.execute(
        select(OutboxMessage.last_attempt_at, OutboxMessage.sent_at, OutboxMessage.due_at)
        .where(OutboxMessage.status == OutboxStatus.SENT, OutboxMessage.sent_at >= now - timedelta(hours=1))
        .limit(20_000)
    ).all()
    f.sent_last_hour = len(recent)
    latency = [(s - a).total_seconds() for a, s, _ in recent if a and s]
    late = [max(0.0, (s - d).total_seconds()) for _, s, d in recent if s and d]
    f.send_latency_p50, f.send_latency_p99 = _pct(latency, 0.5), _pct(latency, 0.99)
    f.lateness_p99 = _pct(late, 0.99)
    sev = dict(
        session.execute(select(InboundMessage.severity, func.count()).group_by(InboundMessage.severity)).all()
    )
    f.inbound = {s: int(sev.get(s, 0)) for s in SEVERITIES}
    open_ = dict(
        session.execute(
            select(Alert.severity, func.count())
            .where(Alert.status == AlertStatus.OPEN)
            .group_by(Alert.severity)
        ).all()
    )
    f.alerts_open = {s: int(open_.get(s, 0)) for s in SEVERITIES[:3]}
    # escalation_level counts ladder steps taken, the first notification included: an
    # escalation is every step after it.
    f.escalations = int(
        session.scalar(
            select(
                func.coalesce(
                    func.sum(case((Alert.escalation_level > 1, Alert.escalation_level - 1), else_=0)), 0
                )
            )
        )
        or 0
    )
    f.workers_alive = int(
        session.scalar(
            select(func.count())
            .select_from(Worker)
            .where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= now - WORKER_FRESH)
        )
        or 0
    )
    f.expired_last_day = int(
        session.scalar(
            select(func.count()).where(
                OutboxMessage.status == OutboxStatus.SKIPPED,
                OutboxMessage.status_reason == "expired",
                OutboxMessage.updated_at >= now - timedelta(days=1),
            )
        )
        or 0
    )
    circuits = session.execute(
        select(RateLimit.key, RateLimit.next_free_at).where(
            RateLimit.key.startswith(CIRCUIT_PREFIX), RateLimit.next_free_at > now
        )
    ).all()
    f.circuits_open = {key.removeprefix(CIRCUIT_PREFIX): until for key, until in circuits}
    return f


@dataclass(frozen=True)
class Outage:
    channel: str
    since: datetime  # when its circuit opened; it stayed open at least ``LONG_OUTAGE``


@dataclass
class Operations:
    """What staff should hear of the sending itself over a period (the daily digest): no
    patient in it, only channels, counts and times."""

    expired: dict[str, int] = field(default_factory=dict)  # channel: unsent rows skipped as expired
    outages: list[Outage] = field(default_factory=list)

    def quiet(self) -> bool:
        return not (self.expired or self.outages)


def operations_since(session: Session, since: datetime) -> Operations:
    """Messages that expired unsent (skipped ``expired`` after a long outage or while no worker
    ran, by their ``updated_at``) and circuits open longer than ``LONG_OUTAGE`` (their
    ``channel.circuit_still_open`` audit rows), from ``since`` on."""
    expired = session.execute(
        select(OutboxMessage.channel, func.count())
        .where(
            OutboxMessage.status == OutboxStatus.SKIPPED,
            OutboxMessage.status_reason == "expired",
            OutboxMessage.updated_at >= since,
        )
        .group_by(OutboxMessage.channel)
        .order_by(OutboxMessage.channel)
    ).all()
    told = session.scalars(
        select(AuditEvent.detail)
        .where(AuditEvent.at >= since, AuditEvent.action == CIRCUIT_STILL_OPEN)
        .order_by(AuditEvent.at, AuditEvent.id)
    ).all()
    return Operations(
        expired={channel: int(n) for channel, n in expired},
        outages=[Outage(d["channel"], datetime.fromisoformat(d["open_since"])) for d in told],
    )


def _line(name: str, value: float | None, **labels: str) -> list[str]:
    if value is None:
        return []
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return [f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}"]


def prometheus_text(f: Figures, counters: Mapping[str, float] = {}) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    out: list[str] = []

    def family(name: str, help_: str, kind: str = "gauge") -> None:
        out.extend([f"# HELP {name} {help_}", f"# TYPE {name} {kind}"])

    family("checkin_messages", "Outbox messages by status.")
    for status, n in f.messages.items():
        out += _line("checkin_messages", n, status=status)
    family("checkin_oldest_due_message_age_seconds", "How long the oldest due, unsent message has waited.")
    out += _line("checkin_oldest_due_message_age_seconds", f.oldest_due_seconds)
    family("checkin_send_latency_seconds", "Claim to provider acceptance over the last hour.")
    out += _line("checkin_send_latency_seconds", f.send_latency_p50, quantile="0.5")
    out += _line("checkin_send_latency_seconds", f.send_latency_p99, quantile="0.99")
    family("checkin_send_lateness_seconds", "Due time to sent over the last hour.")
    out += _line("checkin_send_lateness_seconds", f.lateness_p99, quantile="0.99")
    family("checkin_sent_last_hour", "Messages sent in the last hour.")
    out += _line("checkin_sent_last_hour", f.sent_last_hour)
    family("checkin_inbound_messages", "Patient replies by assessed severity.")
    for s, n in f.inbound.items():
        out += _line("checkin_inbound_messages", n, severity=s)
    family("checkin_alerts_open", "Open alerts by severity.")
    for s, n in f.alerts_open.items():
        out += _line("checkin_alerts_open", n, severity=s)
    family("checkin_escalations", "Escalation steps taken, all alerts.", "counter")
    out += _line("checkin_escalations", f.escalations)
    family("checkin_workers_alive", "Workers with a heartbeat in the last 30 s.")
    out += _line("checkin_workers_alive", f.workers_alive)
    names = sorted({key.split("{", 1)[0] for key in counters})
    for name in names:
        family(f"checkin_{name}", f"{name.replace('_', ' ')} (this process).", "counter")
        for key, value in sorted(counters.items()):
            if key.split("{", 1)[0] == name:
                out.append(f"checkin_{key} {value:g}")
    return "\n".join(out) + "\n"


def status_lines(f: Figures) -> list[str]:
    def secs(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}s"

    return [
        "messages    " + "  ".join(f"{k} {v}" for k, v in f.messages.items()),
        f"oldest due  {f.oldest_due_seconds:.0f}s waiting",
        (
            f"last hour   {f.sent_last_hour} sent, send latency p50 {secs(f.send_latency_p50)} "
            f"p99 {secs(f.send_latency_p99)}, lateness p99 {secs(f.lateness_p99)}"
        ),
        "replies     " + "  ".join(f"{k} {v}" for k, v in f.inbound.items()),
        "alerts open "
        + "  ".join(f"{k} {v}" for k, v in f.alerts_open.items())
        + f"  (escalations {f.escalations})",
        f"workers     {f.workers_alive} alive",
        f"expired     {f.expired_last_day} unsent message(s) skipped as expired in the last 24 h",
        "circuits    "
        + (
            "  ".join(
                f"{c} OPEN (provider failing; next probe {t:%H:%M:%S} UTC)"
                for c, t in f.circuits_open.items()
            )
            or "all closed"
        ),
    ]
