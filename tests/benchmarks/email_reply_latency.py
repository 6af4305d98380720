"""Email reply latency as the site's relay sees it: SMTP DATA sent -> 250 (parse, match by
token, triage, alert, answer queued, commit).

    python -m tests.benchmarks.email_reply_latency [--replies 200] [--backend sqlite postgres]

The receiver (``checkin mail receive``'s server) runs in this process on 127.0.0.1; the
database holds 200 patients, each with an emailed wound check. Replies are sent one after
another over one SMTP connection, as a relay delivering a queue does, each quoting the
question the way a mail client would. Prints one JSON line per backend: replies, errors,
latency p50/p90/p99/max in ms, and replies/s.
"""

from __future__ import annotations

import argparse
import json
import smtplib
import statistics
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from tests.benchmarks.support import database

REPLY_TO = "checkin@replies.example.org"
SECRET = "bench-secret-key-0123456789abcdef"
BODIES = [
    "No, it looks fine",
    "YES it's leaking pus and the edges opened",
    "a little red at the bottom, not warm",
    "Sí, está más roja y caliente",
]


def run(backend: str, replies: int) -> dict[str, object]:
    from checkin.app.bootstrap import build_services
    from checkin.app.mail_receiver import MailReceiver
    from checkin.channels.memory import MemoryChannel
    from checkin.clock import ManualClock
    from checkin.demo.mailcatcher import free_port
    from checkin.store.models import OutboxMessage, Patient
    from checkin.tokens import reply_address
    from tests.support import make_settings

    now = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    with database(backend) as url:
        settings = make_settings(
            CHECKIN_DATABASE_URL=url, CHECKIN_EMAIL_REPLY_TO=REPLY_TO, CHECKIN_SECRET_KEY=SECRET
        )
        clock = ManualClock(now)
        services = build_services(
            settings, clock=clock, sms=MemoryChannel(clock), email=MemoryChannel(clock), schedules={}
        )
        addresses = []
        with services.sessions.begin() as s:
            for i in range(200):
                p = Patient(
                    reference=f"P-B{i:06d}",
                    mrn=f"B{i}",
                    first_name="Ana",
                    email=f"p{i}@example.org",
                    email_consent=True,
                    language="en",
                    timezone="America/New_York",
                    created_at=now,
                )
                s.add(p)
                s.flush()
                row = OutboxMessage(
                    key=f"bench:{i}",
                    patient_id=p.id,
                    step_id="wound-check",
                    channel="email",
                    message="wound_check",
                    ask="wound_check",
                    due_at=now - timedelta(hours=1),
                    expires_at=now + timedelta(hours=8),
                    status="sent",
                    sent_at=now - timedelta(hours=1),
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()
                addresses.append(reply_address(REPLY_TO, SECRET, row.id))
        receiver = MailReceiver(services, "127.0.0.1", free_port())
        receiver.start()
        latencies, errors = [], 0
        started = time.perf_counter()
        try:
            with smtplib.SMTP(receiver.host, receiver.port, timeout=30) as smtp:
                for i in range(replies):
                    mail = EmailMessage()
                    mail["From"] = f"p{i % 200}@example.org"
                    mail["To"] = addresses[i % 200]
                    mail["Subject"] = "Re: Your check-in"
                    mail["Message-ID"] = make_msgid(domain="mail.example.net")
                    mail.set_content(
                        f"{BODIES[i % len(BODIES)]}\n\nOn Tue, Mar 3, 2026 at 9:00 AM Spine <{REPLY_TO}> wrote:\n"
                        "> Is your incision more red, warm or swollen?\n"
                    )
                    t0 = time.perf_counter()
                    try:
                        smtp.send_message(mail)
                    except smtplib.SMTPException:
                        errors += 1
                    latencies.append((time.perf_counter() - t0) * 1000)
        finally:
            elapsed = time.perf_counter() - started
            receiver.stop()
            services.engine.dispose()
    q = statistics.quantiles(latencies, n=100)
    return {
        "backend": backend,
        "replies": replies,
        "errors": errors,
        "p50_ms": round(q[49], 1),
        "p90_ms": round(q[89], 1),
        "p99_ms": round(q[98], 1),
        "max_ms": round(max(latencies), 1),
        "replies_per_s": round(replies / elapsed, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--replies", type=int, default=200)
    ap.add_argument("--backend", nargs="+", default=["sqlite"], choices=["sqlite", "postgres"])
    args = ap.parse_args()
    for backend in args.backend:
        print(json.dumps(run(backend, args.replies)), flush=True)


if __name__ == "__main__":
    main()
