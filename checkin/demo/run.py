"""`checkin demo`: 90 days of recovery for a few synthetic patients, on a simulated clock.

Everything runs through production code: settings, migrations, enrollment, the worker's own
APScheduler jobs (called on simulated time instead of wall time), the real web app under
uvicorn receiving signed Twilio webhooks, the SMTP channel talking to a local SMTP server, the
nurse acknowledgement page. Only three things are stand-ins: SMS go to a console log instead of
Twilio, email lands in a local capture server instead of the hospital relay, and the clock.

The clock jumps from one moment that matters to the next (a message falls due, a patient
answers, a reminder or escalation deadline passes, the morning digest), at most a few hours at
a time, so 90 days take seconds, not months.
"""

from __future__ import annotations

import heapq
import json
import random
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Self, TextIO
from zoneinfo import ZoneInfo

import click
from sqlalchemy import func, select

from checkin.channels import OutgoingMessage, Receipt
from checkin.channels.console import ConsoleChannel
from checkin.clock import ManualClock
from checkin.config import Settings
from checkin.demo.mailcatcher import MailCatcher, free_port
from checkin.demo.patients import PERSONAS, Persona, reply_for
from checkin.states import AlertStatus, ChannelName

TZ = "America/New_York"
AUTH_TOKEN = "demo-auth-token-not-a-secret"  # noqa: S105 - the demo signs its own webhooks
ACCOUNT_SID = "AC" + "d" * 32
MAX_STEP = timedelta(hours=3)


def content_dir(name: str) -> Path:
    """``schedules``/``templates`` from the working directory, else beside the package."""
    here = Path(name)
    if here.is_dir():
        return here.resolve()
    return Path(__file__).resolve().parents[2] / name


@dataclass
class Transcript:
    """SMS go to a console log (as in development) and into this transcript for the report."""

    log: TextIO
    texts: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._console = ConsoleChannel(self.log)
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


def demo_settings(workdir: Path, smtp_port: int, web_port: int, sms_rate: float) -> Settings:
    return Settings.from_env(
        {
            "CHECKIN_DATABASE_URL": f"sqlite:///{workdir / 'demo.db'}",
            "CHECKIN_SCHEDULES_DIR": str(content_dir("schedules")),
            "CHECKIN_TEMPLATES_DIR": str(content_dir("templates")),
            "CHECKIN_DEFAULT_TIMEZONE": TZ,
            "CHECKIN_SECRET_KEY": "demo-secret-key-0123456789abcdef",
            "CHECKIN_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
            "CHECKIN_CLINIC_NAME": "Riverside Spine Center",
            "CHECKIN_CLINIC_PHONE": "+1 555 010 0100",
            "CHECKIN_LOG_LEVEL": "WARNING",
            # Signatures are always verified; the demo signs its webhooks with a made-up token.
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "CHECKIN_SMS_RATE": str(sms_rate),
            "CHECKIN_SMTP_HOST": "127.0.0.1",
            "CHECKIN_SMTP_PORT": str(smtp_port),
            "CHECKIN_SMTP_TLS": "none",
            "CHECKIN_EMAIL_FROM": "checkin@riverside.example.org",
            "CHECKIN_ALERT_EMAILS": "spine-nurses@riverside.example.org",
        }
    )


class WebApp:
    """The real FastAPI app under uvicorn on 127.0.0.1, in a thread."""

    def __init__(self, services: Any, port: int) -> None:
        import uvicorn

        from checkin.app.web import create_app

        self.port = port
        config = uvicorn.Config(
            create_app(services),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            proxy_headers=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="demo-web", daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the demo web app did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def post_sms(self, settings: Settings, persona: Persona, text: str, sid: str) -> tuple[int, str]:
        """A signed Twilio webhook, as Twilio would send it when the patient texts back."""
        from twilio.request_validator import RequestValidator

        path = "/webhooks/twilio/sms"
        params = {
            "MessageSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": persona.phone,
            "To": "+15005550006",
            "Body": text,
            "NumMedia": "0",
        }
        signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{settings.public_url}{path}", params)
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - the demo's own http://127.0.0.1 app
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


def _twiml_text(body: str) -> str:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)  # noqa: S314 - TwiML from the demo's own app
    except ET.ParseError:
        return ""
    return " ".join((m.text or "").strip() for m in root.iter("Message"))


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
        # A nurse acknowledges each EMERGENCY alert from its email a few minutes after it
        # arrives (through the real page: GET, then POST with the CSRF value); the URGENT ones
        # are left alone, so the demo shows the ladder climbing.
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
            due = s.scalar(
                select(func.min(func.coalesce(OutboxMessage.next_attempt_at, OutboxMessage.due_at))).where(
                    OutboxMessage.status == "pending"
                )
            )
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
            sid = f"SMdemo{self.seq:08d}"
            status, body = web.post_sms(services.settings, r.persona, r.text, sid)
            self.webhook_statuses[status] += 1
            self.conversations[r.persona.mrn].append(Exchange(now, "in", r.text, sid=sid))
            answer = _twiml_text(body)
            if answer:
                self.conversations[r.persona.mrn].append(Exchange(now, "reply", answer))

    def watch_mail(self, mail: MailCatcher, now: datetime) -> None:
        import re

        received = mail.received
        for m in received[self.seen_mail :]:
            if m.subject.upper().startswith("EMERGENCY") and "ESCALATED" not in m.text():
                link = re.search(r"(https?://\S+/a/[\w.\-]+)", m.text())
                if link:
                    self.acks_due.append((now + timedelta(minutes=8), link.group(1)))
        self.seen_mail = len(received)

    def acknowledge_due(self, now: datetime) -> None:
        import http.cookiejar
        import re

        for due, link in [a for a in self.acks_due if a[0] <= now]:
            self.acks_due.remove((due, link))
            opener = urllib.request.build_opener(
                urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
            )
            with opener.open(link, timeout=30) as page:
                html = page.read().decode()
            csrf = re.search(r'name="csrf" value="([^"]+)"', html)
            alert = re.search(r'name="alert" value="(\d+)"', html)
            if not (csrf and alert):
                continue
            data = urllib.parse.urlencode({"csrf": csrf.group(1), "alert": alert.group(1)}).encode()
            try:
                with opener.open(urllib.request.Request(link + "/ack", data=data), timeout=30) as r:  # noqa: S310
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            self.acks.append((now, alert.group(1), status))

    def collect_sent(self, services: Any, transcript: Transcript, surgery: date) -> None:
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
                .where(OutboxMessage.status == "sent", OutboxMessage.id.not_in(self.seen_sent or {0}))
            ).all()
        for oid, sent_at, step, ask, channel, recipient, phone, mrn in rows:
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
) -> DemoResult:
    """Run the whole demo and print its report to ``out``; returns the summary figures."""
    from checkin.app.bootstrap import build_services
    from checkin.app.worker import Tuning, make_scheduler, register, startup_report, unregister
    from checkin.store.db import upgrade

    started = time.monotonic()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="checkin-demo-"))
    sim = Simulation(days=days, seed=seed)
    # Enrolled two weeks before surgery, so the pre-operative messages go out too.
    start = datetime(2026, 2, 16, 13, 0, tzinfo=UTC)
    surgery = (start + timedelta(days=14)).date()
    end = datetime.combine(surgery + timedelta(days=days), datetime.min.time(), tzinfo=ZoneInfo(TZ))
    clock = ManualClock(start)
    log_path = workdir / "sms-console.log"
    with MailCatcher() as mail, log_path.open("w") as sms_log:
        port = free_port()
        # The pacer waits in real time; at a long code's 1/s the simulated 09:00 wave would
        # cost real seconds, so the demo's sender is a fast one.
        settings = demo_settings(workdir, mail.port, port, sms_rate=2000 if fast else 500)
        upgrade(settings.database_url)
        transcript = Transcript(sms_log)
        services = build_services(settings, clock=clock, sms=transcript)
        planned = sim.enroll(services, surgery, clock.now())
        worker_id = "demo-worker"
        stop = threading.Event()
        register(services, worker_id, clock.now())
        report = startup_report(services, clock.now())
        scheduler = make_scheduler(services, worker_id=worker_id, stop=stop, tuning=Tuning(concurrency=1))
        jobs = [job.func for job in scheduler.get_jobs()]
        total = (end - start).total_seconds()
        bar_file = sys.stderr if progress else None
        bar: Any
        with (
            WebApp(services, port) as web,
            click.progressbar(
                length=int(total),
                label="simulating recovery",
                file=bar_file,
                show_eta=False,
                item_show_func=lambda _: clock.now().astimezone(ZoneInfo(TZ)).strftime("%b %d"),
            ) as bar,
        ):
            now = clock.now()
            while now < end:
                sim.deliver_replies(services, web, now)
                sim.acknowledge_due(now)
                for job in jobs:
                    job()
                sim.collect_sent(services, transcript, surgery)
                sim.watch_mail(mail, now)
                nxt = min(sim.next_instant(services, now), end)
                bar.update(int((nxt - now).total_seconds()), nxt)
                clock.set(nxt)
                now = nxt
        stop.set()
        unregister(services, worker_id, clock.now())
        summary = _report(sim, services, mail, planned, report, surgery, out, workdir, log_path)
        services.engine.dispose()
    seconds = time.monotonic() - started
    summary["run_seconds"] = round(seconds, 1)
    out.write(f"\nran {days} simulated days in {seconds:.1f} s; files in {workdir}\n")
    return DemoResult(summary=summary, seconds=seconds)


def _report(
    sim: Simulation,
    services: Any,
    mail: MailCatcher,
    planned: int,
    startup: Any,
    surgery: date,
    out: TextIO,
    workdir: Path,
    log_path: Path,
) -> dict[str, Any]:
    from checkin.store.models import Alert, InboundMessage, OutboxMessage, Patient

    tz = ZoneInfo(TZ)
    w = out.write
    w(
        f"\ncheckin demo: {len(PERSONAS)} patients, surgery on {surgery:%a %b %d %Y}, "
        f"{sim.days} days of recovery\n"
    )
    w(f"{startup}\n")
    with services.sessions() as s:
        refs = {mrn: ref for mrn, ref in s.execute(select(Patient.mrn, Patient.reference))}  # noqa: C416 - a Result has keys(): dict() would read it as a mapping
        # The timeline's own rows: not staff messages, digest claims, nudges or follow-ups.
        timeline = (
            OutboxMessage.recipient.is_(None),
            OutboxMessage.key.not_like("digest:%"),
            OutboxMessage.key.not_like("%:remind"),
            OutboxMessage.step_id != "followup",
        )
        statuses = Counter(
            dict(
                s.execute(
                    select(OutboxMessage.status, func.count()).where(*timeline).group_by(OutboxMessage.status)
                ).all()
            )
        )
        reminders = (
            s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.key.like("%:remind"), OutboxMessage.status == "sent")
            )
            or 0
        )
        followups = (
            s.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.step_id == "followup")
            )
            or 0
        )
        staff_sent = (
            s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.recipient.is_not(None), OutboxMessage.status == "sent")
            )
            or 0
        )
        inbound = Counter(
            dict(
                s.execute(
                    select(InboundMessage.severity, func.count()).group_by(InboundMessage.severity)
                ).all()
            )
        )
        alerts = s.scalars(select(Alert).order_by(Alert.opened_at)).all()
        alert_rows = [
            (
                a.id,
                a.kind,
                a.severity,
                list(a.flags),
                a.status,
                a.escalation_level,
                a.opened_at,
                a.acknowledged_at,
                a.patient_id,
            )
            for a in alerts
        ]
        patient_ref = dict(s.execute(select(Patient.id, Patient.reference)).all())
        severity = {
            sid: sev or "none"
            for sid, sev in s.execute(select(InboundMessage.message_sid, InboundMessage.severity))
        }

    for persona in PERSONAS:
        convo = sorted(sim.conversations[persona.mrn], key=lambda e: e.at)
        outs = sum(1 for e in convo if e.direction == "out")
        ins = sum(1 for e in convo if e.direction == "in")
        w(
            f"\n== {persona.first_name} ({refs.get(persona.mrn)}), {persona.procedure}, "
            f"{persona.language}, {persona.channel}: {outs} messages out, {ins} replies ==\n"
        )
        shown = _notable(convo, severity)
        for e in shown:
            when = e.at.astimezone(tz).strftime("%b %d %H:%M")
            arrow = {"out": "->", "in": "<-", "reply": "->"}[e.direction]
            text = " ".join(e.text.split())
            if len(text) > 110:
                text = text[:107] + "..."
            label = f" [{e.note}]" if e.note else ""
            if e.direction == "in":
                label = f" [{severity.get(e.sid or '', 'none')}]"
            elif e.direction == "reply":
                label = " [reply]"
            w(f"  {when} {arrow} {text}{label}\n")
        if len(shown) < len(convo):
            w(f"  ... {len(convo) - len(shown)} more routine messages (all in {log_path.name})\n")

    w("\n== Alerts ==\n")
    by_severity: Counter[str] = Counter()
    for aid, kind, severity, flags, status, level, opened, acked, pid in alert_rows:
        by_severity[severity] += 1
        w(
            f"  #{aid} {severity.upper():<9} {kind:<16} {patient_ref.get(pid)} flags={','.join(flags) or '-'} "
            f"opened {opened.astimezone(tz):%b %d %H:%M}, {status}"
            f"{f' at {acked.astimezone(tz):%H:%M}' if acked else ''}, escalation level {level}\n"
        )
    for at, alert_id, status in sim.acks:
        w(
            f"  nurse acknowledged #{alert_id} from the emailed page at {at.astimezone(tz):%b %d %H:%M} "
            f"(HTTP {status}); its escalation stopped\n"
        )
    emails = mail.received
    patients = {p.email for p in PERSONAS if p.email}
    nurse_mail = [m for m in emails if not set(m.to) & patients]
    patient_mail = [m for m in emails if m not in nurse_mail]
    w(
        f"\n== Email captured by the local SMTP server: {len(emails)} "
        f"({len(patient_mail)} to patients, {len(nurse_mail)} to the care team) ==\n"
    )
    digests = [m for m in nurse_mail if m.subject.startswith("Daily digest")]
    for m in nurse_mail:
        if m not in digests:
            w(f"  to {', '.join(m.to)}: {m.subject}\n")
    if digests:
        w(f"  ... and {len(digests)} daily digests, the last: {digests[-1].subject}\n")
    alert_mail = [
        m
        for m in nurse_mail
        if m.subject.upper().startswith(("EMERGENCY", "URGENT", "[EMERGENCY", "[URGENT"))
    ]
    if alert_mail:
        w("\n-- the first emergency/urgent alert email, as the nurse reads it --\n")
        w(alert_mail[0].text()[:2500] + "\n")

    replies = sum(inbound.values())
    summary = {
        "patients": len(PERSONAS),
        "messages_planned": planned,
        "messages_sent": int(statuses.get("sent", 0)),
        "messages_skipped": int(statuses.get("skipped", 0)),
        "messages_cancelled": int(statuses.get("cancelled", 0)),
        "messages_pending": int(statuses.get("pending", 0)),
        "messages_other": {
            k: int(v) for k, v in statuses.items() if k not in ("sent", "skipped", "cancelled", "pending")
        },
        "reminders_sent": int(reminders),
        "follow_up_questions": int(followups),
        "staff_notifications_sent": int(staff_sent),
        "replies": replies,
        "replies_by_severity": {k or "unassessed": int(v) for k, v in inbound.items()},
        "alerts_by_severity": dict(by_severity),
        "alert_emails": len(nurse_mail) - len(digests),
        "daily_digests": len(digests),
        "nurse_acknowledgements": len(sim.acks),
        "ladder_steps": sum(r[5] for r in alert_rows),  # first notifications and escalations
        "emails_captured": len(emails),
        "webhook_responses": {str(k): v for k, v in sim.webhook_statuses.items()},
    }
    w("\n== Summary ==\n" + json.dumps(summary, indent=2) + "\n")
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _notable(convo: list[Exchange], severity: dict[str, str]) -> list[Exchange]:
    """The first three messages, then every reply that was not 'none' with the question it
    answered and the safety reply it got; routine traffic is only counted."""
    keep: list[Exchange] = []
    for i, e in enumerate(convo):
        if i < 3:
            keep.append(e)
            continue
        if e.direction == "in" and severity.get(e.sid or "", "none") != "none":
            before = convo[i - 1] if convo[i - 1].direction == "out" else None
            after = convo[i + 1] if i + 1 < len(convo) and convo[i + 1].direction == "reply" else None
            keep.extend(x for x in (before, e, after) if x is not None and x not in keep)
    return keep
