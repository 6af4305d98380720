"""``checkin hl7 listen | errors | replay``: the EHR's HL7 v2 feed over MLLP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from checkin.app.cli.context import App, fail_cleanly, pass_app
from checkin.app.cli.display import clean

if TYPE_CHECKING:
    from checkin.integrations.hl7.feed import Feed


@click.group()
def hl7() -> None:
    """The EHR's HL7 v2 feed: SIU scheduling and ADT discharge/update/merge messages."""


def _feed(app: App) -> Feed:
    from checkin.app.bootstrap import build_hl7_feed, build_sessions

    return build_hl7_feed(app.settings, build_sessions(app.engine), app.schedules, app.clock)


@hl7.command("listen")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=2575, show_default=True, type=click.IntRange(0, 65535), help="TCP port (MLLP)."
)
@pass_app
@fail_cleanly
def listen(app: App, host: str, port: int) -> None:
    """Receive HL7 v2 messages over MLLP and ACK each one, until SIGTERM or Ctrl-C.

    Every message is acknowledged AA (applied), AE (ours but wrong: ERR names the field) or AR
    (not ours); refused ones are kept for `checkin hl7 errors`. Run as many listeners as you
    like on PostgreSQL: a message that reaches two of them is applied once."""
    import asyncio
    import signal

    from checkin.integrations.hl7.listener import serve

    feed = _feed(app)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(
            feed, host, port, stop=stop, ready=lambda p: click.echo(f"listening for HL7 on {host}:{p}")
        )

    asyncio.run(main())


@hl7.command("errors")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@pass_app
@fail_cleanly
def errors(app: App, limit: int) -> None:
    """Messages refused (AE/AR) and not replayed since, newest first: id, time, type, problem."""
    from sqlalchemy import select

    from checkin.store import audit
    from checkin.store.hl7_messages import ACCEPTED, Hl7Message

    with app.session() as session:
        rows = session.scalars(
            select(Hl7Message)
            .where(Hl7Message.outcome != ACCEPTED)
            .order_by(Hl7Message.id.desc())
            .limit(limit)
        ).all()
        for r in rows:
            click.echo(
                f"{r.id:>6}  {r.received_at:%Y-%m-%d %H:%M}Z  {r.ack_code}  {clean(r.message_type) or '-':<8}  "
                f"{clean(r.control_id or '-'):<20}  {clean(r.problem or '')}"
            )
        # The problems quote patients' data: who looked, and at which messages, is audited.
        audit.record(
            session, at=app.clock.now(), actor="cli", action="hl7.errors_viewed", ids=[r.id for r in rows]
        )
    click.echo(f"{len(rows)} refused message(s)" + (" shown" if len(rows) == limit else ""))


@hl7.command("replay")
@click.argument("message_id", type=int)
@pass_app
@fail_cleanly
def replay(app: App, message_id: int) -> None:
    """Handle a refused message again (after fixing hl7.yaml or the patient's data); prints the
    new outcome. A resend from the EHR then gets the new ACK."""
    outcome = _feed(app).replay(message_id)
    what = {"AA": "accepted", "AE": "refused again (AE)", "AR": "rejected again (AR)"}[outcome.code]
    click.echo(f"message {message_id}: {what}" + (f": {clean(outcome.problem)}" if outcome.problem else ""))
    if outcome.code != "AA":
        raise SystemExit(1)


COMMANDS: list[click.Command] = [hl7]
