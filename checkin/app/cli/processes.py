"""The long-running processes: ``checkin worker | web | serve``, the ``demo``, and ``status``."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from checkin.app.cli.context import App, fail_cleanly, pass_app


@click.command()
@click.option("--days", default=90, show_default=True, help="Days of recovery to simulate after surgery.")
@click.option("--seed", default=7, show_default=True, help="Seed for the synthetic patients' answers.")
@click.option("--fast", is_flag=True, help="A higher simulated SMS rate, for a quicker run.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to keep the demo database and logs (default: a new temporary folder).",
)
@click.option("--serve", is_flag=True, help="Keep the web app running afterwards, with a demo nurse account.")
def demo(days: int, seed: int, fast: bool, workdir: Path | None, serve: bool) -> None:
    """Walk synthetic patients through recovery on a simulated clock, through the real worker,
    web app, webhooks and SMTP, then show the conversations, alerts and a summary."""
    from checkin.demo.run import run_demo

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    run_demo(days=days, seed=seed, fast=fast, workdir=workdir, serve=serve)


# ---- processes --------------------------------------------------------------------------


def start_logging(app: App) -> None:
    """JSON logs through the redaction filter before anything is built, so start-up's own
    warnings (unsafe defaults in development) are written like every other line."""
    from checkin.logs import configure

    configure(app.settings.log_level)


@click.command()
@click.option(
    "--id", "worker_id", default=None, help="Worker name in logs and heartbeats (default host:pid)."
)
@pass_app
@fail_cleanly
def worker(app: App, worker_id: str | None) -> None:
    """Run the dispatcher and sweeps (APScheduler ticks) until SIGTERM or Ctrl-C."""
    from checkin.app.bootstrap import build_services
    from checkin.app.worker import run

    start_logging(app)
    run(build_services(app.settings), worker_id=worker_id)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Web processes sharing the port (one core each; PostgreSQL only above 1).",
)
@pass_app
@fail_cleanly
def web(app: App, host: str, port: int, workers: int) -> None:
    """Run the web app: Twilio webhooks, check-in forms, nurse pages, /healthz, /readyz."""
    from checkin.app.bootstrap import build_services
    from checkin.app.web import serve

    start_logging(app)
    # No ping on each connection checkout (a round trip per request): the webhooks retry a
    # transaction that met a dead connection instead (ADR 0020). ``checkin serve`` keeps the
    # ping, its worker shares the engine.
    if workers == 1:
        serve(build_services(app.settings, pool_pre_ping=False), host=host, port=port)
        return
    from checkin.app.web import workers as several

    if not several.supported():
        raise click.ClickException("--workers above 1 needs SO_REUSEPORT and fork (Linux, BSD, macOS)")
    if app.settings.database_url.startswith("sqlite"):
        # One writer at a time: more processes would only queue on the file's lock, and the
        # web app's in-process write lock (which keeps SQLite's busy handler out) covers one.
        raise click.ClickException("--workers above 1 needs PostgreSQL; on SQLite run one web process")
    try:
        several.check_port(host, port)
    except OSError as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    settings = app.settings  # read once here; every process inherits it

    @fail_cleanly
    def start(sock: socket.socket) -> None:
        serve(build_services(settings, pool_pre_ping=False), sockets=[sock], supervised=True)

    def child(sock: socket.socket) -> int:
        try:
            start(sock)
        except click.ClickException as e:
            e.show()  # the one line ``fail_cleanly`` made, as a single process prints it
            return 1
        return 0

    raise SystemExit(several.run_workers(workers, host, port, child))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@pass_app
@fail_cleanly
def serve(app: App, host: str, port: int) -> None:
    """Run the web app and the worker in one process (small sites)."""
    import threading

    from checkin.app.bootstrap import build_services
    from checkin.app.web import serve as serve_web
    from checkin.app.worker import default_worker_id, register, run

    start_logging(app)
    services = build_services(app.settings)
    # Register here, not only in the thread: a database that cannot be written (read-only,
    # refused) then stops the process with one line instead of a thread's traceback.
    worker_id = default_worker_id()
    register(services, worker_id, services.clock.now())
    stop = threading.Event()
    thread = threading.Thread(
        target=run,
        args=(services,),
        kwargs={"worker_id": worker_id, "stop": stop, "install_signal_handlers": False},
        name="checkin-worker",
        daemon=False,
    )
    thread.start()
    try:
        serve_web(services, host=host, port=port)
    finally:
        stop.set()
        thread.join()


@click.command()
@click.option(
    "--check", is_flag=True, help="Exit 1 unless the database answers and is migrated (health checks)."
)
@pass_app
@fail_cleanly
def status(app: App, check: bool) -> None:
    """Messages by status, oldest due message, send latency, replies, open alerts, workers."""
    from checkin.store.status import collect, status_lines

    with app.session() as session:
        figures = collect(session, app.clock.now())
    if check:
        click.echo("ok")
        return
    for line in status_lines(figures):
        click.echo(line)


COMMANDS = [demo, worker, web, serve, status]
