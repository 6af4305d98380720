"""`checkin demo`: 90 days of recovery for a few synthetic patients, on a simulated clock.

Everything runs through production code: settings, migrations, enrollment, the worker's own
APScheduler jobs (called on simulated time instead of wall time), the real web app under
uvicorn receiving signed Twilio webhooks, the SMTP channel talking to a local SMTP server, the
nurse acknowledgement page. Only three things are stand-ins: SMS go to a console log instead of
Twilio, email lands in a local capture server instead of the hospital relay, and the clock.

The clock jumps from one moment that matters to the next (a message falls due, a patient
answers, a reminder or escalation deadline passes, the morning digest), at most 12 hours at a
time, so 90 days take seconds, not months.
"""

from __future__ import annotations

import heapq
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from checkin.channels import OutgoingMessage, Receipt
from checkin.channels.console import ConsoleChannel
from checkin.clock import ManualClock
from checkin.demo.mailcatcher import MailCatcher, free_port
from checkin.demo.patients import PERSONAS, Persona, reply_for
from checkin.demo.progress import Progress
from checkin.demo.site import TZ, WebApp, demo_settings, twiml_text, unsafe_defaults_counted
from checkin.states import AlertStatus, ChannelName

# Every moment that matters is a candidate in next_instant (a message due or deferred to its
# send window, a reply, a reminder or missed deadline, an escalation, an acknowledgement, the
# digest hour); this cap only bounds a jump if one were forgotten. At 3 h it caused over half
# of all stops (quiet nights, each running every worker job), for nothing.
MAX_STEP = timedelta(hours=12)
# The pacer waits in real time; at a long code's 1/s the simulated 09:00 wave would cost real
# seconds, so the demo's sender is a fast one (--fast: the highest rate CHECKIN_SMS_RATE takes).
SMS_RATE = 500.0
FAST_SMS_RATE = 1000.0
# When the demo nurse acknowledges an alert after its first email: an emergency within minutes;
# an urgent one only after two hours, so the report shows its ladder climbing (team email
# again, then the on-call SMS, then that SMS repeating). Left unacknowledged, an urgent alert's
# last step repeats every 30 minutes for the rest of the 90 days, as it would in a real clinic.
ACK_AFTER = {"EMERGENCY": timedelta(minutes=8), "URGENT": timedelta(hours=2)}


@dataclass
class Transcript:
    """SMS go to a console log (as in development) and into this transcript for the report."""

    log: TextIO
    texts: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._console = ConsoleChannel(self.log, reveal=True)  # synthetic patients, a file
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> Receipt:
        receipt = self._console.send(message)
        with self._lock:
            self.texts[message.outbox_id] = message.text
        return receipt


@dataclass(order=True)
class PendingReply:
    at: datetime
    seq: int
    persona: Persona = field(compare=False)
    text: str = field(compare=False)


@dataclass
class Exchange:
    at: datetime
    direction: str  # "out" | "in" | "reply"
    text: str
    note: str = ""
    sid: str | None = None  # inbound: the MessageSid, to look up its assessment


@dataclass
class DemoResult:
    summary: dict[str, Any]
    seconds: float


class Simulation:
    def __init__(self, *, days: int, seed: int) -> None:
        self.days = days
        self.rng = random.Random(seed)
        self.conversations: dict[str, list[Exchange]] = {p.mrn: [] for p in PERSONAS}
        self.replies: list[PendingReply] = []
        self.seq = 0
        self.scripted_used: dict[str, set[int]] = {p.mrn: set() for p in PERSONAS}
        self.webhook_statuses: Counter[int] = Counter()
        self.seen_sent: set[int] = set()
        self.last_collect = datetime.min.replace(tzinfo=UTC)
        # A nurse acknowledges each emergency and urgent alert from its email (through the real
        # page: sign in, GET, then POST with the CSRF value), after ACK_AFTER.
        self.acks_due: list[tuple[datetime, str]] = []
        self.seen_mail = 0
        self.acks: list[tuple[datetime, str, int]] = []

    # ---- setup ------------------------------------------------------------------------
    def enroll(self, services: Any, surgery: date, now: datetime) -> int:
        from checkin.enrollment.enroll import enroll_many, parse_request

        reqs = [
            parse_request(
                {
                    "mrn": p.mrn,
                    "first_name": p.first_name,
                    "phone": p.phone,
                    "email": p.email,
                    "procedure": p.procedure,
                    "surgery_date": surgery.isoformat(),
                    "timezone": TZ,
                    "language": p.language,
                    "smoker": p.smoker,
                    "channel": p.channel,
                    "attributes": list(p.attributes),
                },
                schedules=services.schedules,
                default_region="US",
                default_timezone=TZ,
            )
            for p in PERSONAS
        ]
        with services.sessions.begin() as session:
            return enroll_many(session, reqs, schedules=services.schedules, now=now, actor="demo").planned

    # ---- the loop ---------------------------------------------------------------------
    def next_instant(self, services: Any, now: datetime) -> datetime:
        from checkin.store.models import Alert, OutboxMessage

        candidates = [now + MAX_STEP]
        with services.sessions() as s:
            # Rows a later job queued at this instant (a reminder, a nurse's email, the digest)
            # are due now: dispatch runs first, so come back in a minute for them. The next
            # row still ahead is a candidate of its own, never hidden behind a minimum that is
            # already past.
            when = func.coalesce(OutboxMessage.next_attempt_at, OutboxMessage.due_at)
            pending = OutboxMessage.status == "pending"
            if s.scalar(select(OutboxMessage.id).where(pending, when <= now).limit(1)) is not None:
                candidates.append(now + timedelta(minutes=1))
            due = s.scalar(select(func.min(when)).where(pending, when > now))
            if due:
                candidates.append(due)
            esc = s.scalar(select(func.min(Alert.next_escalation_at)).where(Alert.status == AlertStatus.OPEN))
            if esc:
                candidates.append(esc)
            for sent_at, remind, missed, reminded, missed_at in s.execute(
                select(
                    OutboxMessage.sent_at,
                    OutboxMessage.remind_after_s,
                    OutboxMessage.missed_after_s,
                    OutboxMessage.reminded_at,
                    OutboxMessage.missed_at,
                ).where(
                    OutboxMessage.status == "sent",
                    OutboxMessage.ask.is_not(None),
                    OutboxMessage.answered_at.is_(None),
                    OutboxMessage.sent_at >= now - timedelta(days=2),
                )
            ):
                if remind and not reminded:
                    candidates.append(sent_at + timedelta(seconds=remind))
                if missed and not missed_at:
                    candidates.append(sent_at + timedelta(seconds=missed))
        if self.replies:
            candidates.append(self.replies[0].at)
        candidates.extend(due for due, _ in self.acks_due)
        local = now.astimezone(ZoneInfo(TZ))
        digest = local.replace(hour=7, minute=0, second=0, microsecond=0)
        if digest <= local:
            digest += timedelta(days=1)
        candidates.append(digest.astimezone(UTC))
        later = [c for c in candidates if c > now]
        return max(min(later), now + timedelta(minutes=1))

    def deliver_replies(self, services: Any, web: WebApp, now: datetime) -> None:
        while self.replies and self.replies[0].at <= now:
            r = heapq.heappop(self.replies)
            self.seq += 1
            sid = f"SM{self.seq:032x}"
            status, body = web.post_sms(services.settings, r.persona, r.text, sid)
            self.webhook_statuses[status] += 1
            self.conversations[r.persona.mrn].append(Exchange(now, "in", r.text, sid=sid))
            answer = twiml_text(body)
            if answer:
                self.conversations[r.persona.mrn].append(Exchange(now, "reply", answer))

    def watch_mail(self, mail: MailCatcher, now: datetime, email_dir: Path) -> None:
        """Queue the nurse's acknowledgement of each new emergency alert email, and keep every
        new email as an .eml file (openable in any mail program)."""
        import re

        received = mail.received
        for n, m in enumerate(received[self.seen_mail :], start=self.seen_mail + 1):
            (email_dir / f"{n:04d}.eml").write_bytes(m.message.as_bytes())
            severity = re.match(r"\[?([A-Z]+)", m.subject.upper())
            delay = ACK_AFTER.get(severity.group(1) if severity else "")
            repeat = "escalation step" in m.subject or "ESCALATED" in m.text()
            if delay is not None and not repeat:
                link = re.search(r"(https?://\S+/a/[\w.\-]+)", m.text())
                if link:
                    self.acks_due.append((now + delay, link.group(1)))
        self.seen_mail = len(received)

    def acknowledge_due(self, now: datetime) -> None:
        from checkin.demo import nurse

        for due, link in [a for a in self.acks_due if a[0] <= now]:
            self.acks_due.remove((due, link))
            done = nurse.acknowledge(link)  # signs in as the demo nurse, as a person would
            if done is not None:
                self.acks.append((now, *done))

    def collect_sent(self, services: Any, transcript: Transcript, surgery: date, now: datetime) -> None:
        """Record what went out; schedule the personas' answers to check-in questions."""
        from checkin.store.models import OutboxMessage, Patient

        by_phone = {p.phone: p for p in PERSONAS}
        with services.sessions() as s:
            rows = s.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.sent_at,
                    OutboxMessage.step_id,
                    OutboxMessage.ask,
                    OutboxMessage.channel,
                    OutboxMessage.recipient,
                    Patient.phone,
                    Patient.mrn,
                )
                .outerjoin(Patient, Patient.id == OutboxMessage.patient_id)
                # Sends are stamped with the simulated clock, so every row not yet seen was sent
                # at or after the previous look; the id check drops the ones on its boundary.
                .where(OutboxMessage.status == "sent", OutboxMessage.sent_at >= self.last_collect)
                .order_by(OutboxMessage.id)  # the seeded answers are drawn in this order
            ).all()
        self.last_collect = now
        for oid, sent_at, step, ask, channel, recipient, phone, mrn in rows:
            if oid in self.seen_sent:
                continue
            self.seen_sent.add(oid)
            if mrn is None or mrn not in self.conversations or recipient:
                continue  # staff notifications are reported with the alerts
            text = transcript.texts.get(oid, f"(email: {step})")
            self.conversations[mrn].append(Exchange(sent_at, "out", text, note=f"{channel} {step}"))
            persona = by_phone.get(phone or "")
            if persona is None or ask is None or channel != ChannelName.SMS:
                continue
            day = (sent_at.astimezone(ZoneInfo(TZ)).date() - surgery).days
            answer = reply_for(persona, ask, day, self.rng, self.scripted_used[mrn])
            if answer is None:
                continue
            delay = timedelta(minutes=self.rng.randint(3, 90))
            self.seq += 1
            heapq.heappush(self.replies, PendingReply(sent_at + delay, self.seq, persona, answer))


def run_demo(
    *,
    days: int = 90,
    seed: int = 7,
    fast: bool = False,
    out: TextIO = sys.stdout,
    workdir: Path | None = None,
    progress: bool = True,
    progress_to: TextIO | None = None,
    serve: bool = False,
) -> DemoResult:
    """Run the whole demo and print its report to ``out``; returns the summary figures.
    Progress goes to ``progress_to`` (default stderr) unless ``progress`` is false. The SMS
    log, every captured email (``email/NNNN.eml``), the database and ``summary.json`` are
    left in ``workdir``."""
    from checkin.app.bootstrap import build_services
    from checkin.app.worker import Tuning, make_scheduler, register, startup_report, unregister
    from checkin.demo import nurse
    from checkin.demo.report import write_report
    from checkin.store.db import upgrade

    started = time.monotonic()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="checkin-demo-"))
    email_dir = workdir / "email"
    email_dir.mkdir(parents=True, exist_ok=True)
    sim = Simulation(days=days, seed=seed)
    # Enrolled two weeks before surgery, so the pre-operative messages go out too.
    start = datetime(2026, 2, 16, 13, 0, tzinfo=UTC)
    surgery = (start + timedelta(days=14)).date()
    end = datetime.combine(surgery + timedelta(days=days), datetime.min.time(), tzinfo=ZoneInfo(TZ))
    clock = ManualClock(start)
    log_path = workdir / "sms-console.log"
    with MailCatcher() as mail, log_path.open("w") as sms_log:
        port = free_port()
        settings = demo_settings(workdir, mail.port, port, sms_rate=FAST_SMS_RATE if fast else SMS_RATE)
        upgrade(settings.database_url)
        transcript = Transcript(sms_log)
        with unsafe_defaults_counted() as unsafe:
            services = build_services(settings, clock=clock, sms=transcript)
        if unsafe and progress:
            (progress_to or sys.stderr).write(
                f"demo: development settings ({len(unsafe)} of them would be refused in production; "
                "`checkin check` lists them)\n"
            )
        nurse.add_account(services)
        planned = sim.enroll(services, surgery, clock.now())
        worker_id = "demo-worker"
        stop = threading.Event()
        register(services, worker_id, clock.now())
        report = startup_report(services, clock.now())
        scheduler = make_scheduler(services, worker_id=worker_id, stop=stop, tuning=Tuning(concurrency=1))
        jobs = [job.func for job in scheduler.get_jobs()]
        stream = (progress_to or sys.stderr) if progress else None
        with WebApp(services, port) as web, Progress(stream, clock, start, end) as bar:
            now = clock.now()
            while now < end:
                sim.deliver_replies(services, web, now)
                sim.acknowledge_due(now)
                for job in jobs:
                    job()
                sim.collect_sent(services, transcript, surgery, now)
                sim.watch_mail(mail, now, email_dir)
                nxt = min(sim.next_instant(services, now), end)
                bar.advance(now, nxt, len(sim.seen_sent))
                clock.set(nxt)
                now = nxt
        stop.set()
        unregister(services, worker_id, clock.now())
        summary = write_report(sim, services, mail, planned, report, surgery, out, workdir, log_path)
        if serve:
            nurse.serve(services, port, out)  # until Ctrl-C
        services.engine.dispose()
    seconds = time.monotonic() - started
    summary["run_seconds"] = round(seconds, 1)
    out.write(
        f"\nran {days} simulated days in {seconds:.1f} s; files in {workdir} (emails in {email_dir.name}/)\n"
    )
    return DemoResult(summary=summary, seconds=seconds)
