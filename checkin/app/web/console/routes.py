"""The console's pages: ``/console`` (worklist), its polled fragment, ``/console/patients/{ref}``,
search, actions, the admin page and the static files.

URLs carry nothing but the patient's opaque reference: search is a POST (a name or MRN in a
query string would sit in browser history and proxy logs). Every POST checks the session's
CSRF value first, then the team, then acts, and redirects (303) back, so a reload does not
repeat it.
"""

from __future__ import annotations

import secrets
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from checkin.app.web.console import access, actions, patient, worklist
from checkin.app.web.console.render import HERE, REFRESH_SECONDS, STATIC, page
from checkin.app.web.console.teams import team_column, visible
from checkin.app.web.deps import web_of
from checkin.staff import accounts
from checkin.staff.signin import Current
from checkin.store import audit
from checkin.store.models import Alert, Patient

router = APIRouter()
SEARCH_LIMIT = 50


def _ctx(request: Request) -> tuple[Any, ZoneInfo, str]:
    services = web_of(request).services
    return services, ZoneInfo(services.settings.default_timezone), services.care_teams.current().default


def _refused(r: access.Refusal, who: Current | None = None) -> Response:
    return page(
        "message.html",
        r.status,
        title="Not allowed" if r.status == 403 else "Not done",
        message=r.message,
        who=who,
        status_error=True,
    )


@router.get("/console/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    body = (HERE / "static" / name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "private, max-age=300"})


def _worklist_ctx(request: Request, session: Session, who: Current) -> dict[str, Any]:
    services, tz, default_team = _ctx(request)
    filters = worklist.Filters.parse(dict(request.query_params))
    now = services.clock.now()
    wl = worklist.load(session, who, filters, now=now, tz=tz, default_team=default_team)
    teams = sorted(services.care_teams.current().teams) if who.is_admin else [who.team]
    return {
        "who": who,
        "wl": wl,
        "filters": filters,
        "teams": teams,
        "severities": worklist.SEVERITIES,
        "refresh": REFRESH_SECONDS,
        "query": str(request.url.query),
        "title": "Worklist",
    }


@router.get("/console")
async def worklist_page(request: Request) -> Response:
    ctx = await access.as_staff(request, lambda s, who: _worklist_ctx(request, s, who))
    return page("worklist.html", **ctx)


@router.get("/console/worklist-fragment")
async def worklist_fragment(request: Request) -> Response:
    """The lists alone, for the page's script to swap in every REFRESH_SECONDS."""
    ctx = await access.as_staff(request, lambda s, who: _worklist_ctx(request, s, who))
    return page("_lists.html", **ctx)


@router.get("/console/alerts/{alert_id}")
async def alert_link(request: Request, alert_id: int) -> Response:
    """Where the emailed alert link leads (after sign-in): the alert's patient page."""

    def where(session: Session, who: Current) -> str | None:
        return session.scalar(
            select(Patient.reference).join(Alert, Alert.patient_id == Patient.id).where(Alert.id == alert_id)
        )

    ref = await access.as_staff(request, where)
    if ref is None:
        return page("message.html", 404, title="Not found", message="No such alert.")
    return RedirectResponse(f"/console/patients/{ref}#alert-{alert_id}", status_code=303)


@router.get("/console/patients/{reference}")
async def patient_page(request: Request, reference: str, done: str | None = None) -> Response:
    services, _, default_team = _ctx(request)

    def load(session: Session, who: Current) -> tuple[Current, Any]:
        return who, patient.load(
            session,
            who,
            reference,
            now=services.clock.now(),
            settings=services.settings,
            renderer=services.renderer,
            default_team=default_team,
        )

    who, view = await access.as_staff(request, load)
    if isinstance(view, access.Refusal):
        return _refused(view, who)
    return page(
        "patient.html",
        who=who,
        view=view,
        title=f"Patient {view.reference}",
        message=actions.DONE.get(done or ""),
        once=secrets.token_hex(16),
        max_reply=actions.MAX_REPLY,
        max_note=actions.MAX_NOTE,
    )


@router.post("/console/patients/{reference}/{action}")
async def act(request: Request, reference: str, action: str) -> Response:
    if action not in (*actions.ACTIONS, "reschedule"):
        return Response("unknown action", status_code=404, media_type="text/plain")
    try:
        form = await access.read_form(request)
    except access.BadForm as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    services, _, default_team = _ctx(request)

    def run(session: Session, who: Current) -> tuple[Current, str | access.Refusal]:
        now = services.clock.now()
        found = patient.check_access(
            session, who, reference, now=now, default_team=default_team, action=action
        )
        if isinstance(found, access.Refusal):
            return who, found
        p, _ = found
        if action == "reschedule":
            return who, actions.reschedule(session, who, p, form, now, services.schedules)
        return who, actions.ACTIONS[action](session, who, p, form, now)

    result = await access.as_staff(request, run, form=form)
    if isinstance(result, access.Refusal):
        return _refused(result)
    who, outcome = result
    if isinstance(outcome, access.Refusal):
        return _refused(outcome, who)
    web_of(request).metrics.inc("console_actions_total", action=action)
    return RedirectResponse(f"/console/patients/{reference}?done={outcome}", status_code=303)


@router.post("/console/search")
async def search(request: Request) -> Response:
    try:
        form = await access.read_form(request)
    except access.BadForm as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    services, _, default_team = _ctx(request)
    q = " ".join(form.get("q", "").split())[:100]

    def find(session: Session, who: Current) -> dict[str, Any]:
        rows: list[Any] = []
        if q:
            stmt = (
                select(Patient.reference, Patient.first_name, team_column(default_team))
                .where(
                    or_(
                        Patient.reference == q.upper(),
                        Patient.mrn == q,
                        Patient.first_name.ilike(q.replace("\\", "").replace("%", "").replace("_", "") + "%"),
                    )
                )
                .order_by(Patient.first_name, Patient.reference)
                .limit(SEARCH_LIMIT)
            )
            scope = visible(who, default_team)
            if scope is not None:
                stmt = stmt.where(scope)
            rows = list(session.execute(stmt).all())
        # What was searched for may be a name or an MRN: the audit row keeps only its length.
        audit.record(
            session,
            at=services.clock.now(),
            actor=who.email,
            action="patient.searched",
            chars=len(q),
            found=len(rows),
        )
        return {"who": who, "q": q, "rows": rows, "title": "Search"}

    result = await access.as_staff(request, find, form=form)
    if isinstance(result, access.Refusal):
        return _refused(result)
    return page("search.html", **result)


@router.get("/console/admin")
async def admin_page(request: Request) -> Response:
    def load(session: Session, who: Current) -> dict[str, Any]:
        return {"who": who, "staff": accounts.all_staff(session), "title": "Staff accounts"}

    result = await access.as_staff(request, load, admin=True)
    if isinstance(result, access.Refusal):
        return _refused(result)
    return page("admin.html", **result)
