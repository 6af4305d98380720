"""The email check-in form: ``GET /c/{token}`` shows one question, ``POST /c/{token}`` answers it.

- **No login; the signed token is the capability.** It carries only the outbox id
  (``checkin.tokens``, salt ``checkin.email-checkin``) and expires after CHECKIN_MAX_AGE.
  Forged → 403, expired → 410; both pages tell the patient to call the clinic (and the emergency number).
- **GET has no side effects**: mail scanners fetch links, so only the POST records anything.
- **CSRF**: the POST must carry the token (in the URL) *and* a per-form ``nonce``, a value signed
  for this outbox id with its own salt and a one-day life, which only a page we served holds.
- **Same path as SMS**: the answer goes through ``checkin.inbound.process.process`` with
  ``message_sid = "web-<outbox id>"``, so a second submission (back button, double click) is
  stored once and then shown "already answered". The safety reply is shown on the page; an
  ambiguous answer shows the follow-up question with a form of its own.
- Pages send ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store`` (the URL holds
  the token) and a CSP that allows no scripts. Patient input is never echoed back.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from checkin import tokens
from checkin.app.web.deps import ServicesDep, WebDep, web_of
from checkin.app.web.limits import in_db_thread, is_form, parse_form
from checkin.app.web.pages import HEADERS, PAGES
from checkin.deps import Services
from checkin.errors import TemplateError
from checkin.inbound import process as inbound
from checkin.store.models import Enrollment, InboundMessage, OutboxMessage, Patient

log = logging.getLogger(__name__)
router = APIRouter()

FORM_SALT = "checkin.checkin-form"
FORM_MAX_AGE = 24 * 3600
MAX_ANSWER = 1600


# Page wording (code-owned, not admin-edited): en and es.
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Check-in",
        "send": "Send answer",
        "label": "Your answer",
        "thanks": "Thank you, we got your answer.",
        "already": "This question has already been answered. Thank you.",
        "forged": "This link is not valid.",
        "expired": "This link has expired.",
        "gone": "This question is no longer available.",
        "call": "Questions? Call {clinic} at {phone}. If this is an emergency, call {emergency}.",
        "empty": "Please write an answer before sending.",
        "unavailable": "We could not save your answer just now. Please try again in a minute.",
    },
    "es": {
        "title": "Control",
        "send": "Enviar respuesta",
        "label": "Su respuesta",
        "thanks": "Gracias, recibimos su respuesta.",
        "already": "Esta pregunta ya fue respondida. Gracias.",
        "forged": "Este enlace no es válido.",
        "expired": "Este enlace ha vencido.",
        "gone": "Esta pregunta ya no está disponible.",
        "call": "¿Dudas? Llame a {clinic} al {phone}. Si es una emergencia, llame al {emergency}.",
        "empty": "Escriba una respuesta antes de enviar.",
        "unavailable": "No pudimos guardar su respuesta. Intente de nuevo en un minuto.",
    },
}


def _page(request: Request, status: int, language: str, **ctx: Any) -> HTMLResponse:
    settings = web_of(request).services.settings
    t = TEXT.get(language, TEXT["en"])
    html = PAGES.get_template("checkin.html").render(
        t=t,
        lang=language,
        call=t["call"].format(
            clinic=settings.clinic_name, phone=settings.clinic_phone, emergency=settings.emergency_number
        ),
        clinic=settings.clinic_name,
        **ctx,
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


class _Question:
    """What the page needs about one outbox row (loaded in a worker thread)."""

    def __init__(self, row: OutboxMessage, patient: Patient, text: str, answered: bool) -> None:
        self.outbox_id, self.language = row.id, patient.language if patient.language in TEXT else "en"
        self.text, self.answered, self.patient_ref = text, answered, patient.reference


def _load(services: Services, outbox_id: int, now: datetime) -> _Question | None:
    from checkin.content.catalog import message_context

    with services.sessions() as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None or row.patient_id is None or not row.ask:
            return None
        patient = session.get(Patient, row.patient_id)
        if patient is None:
            return None
        enrollment = session.get(Enrollment, row.enrollment_id) if row.enrollment_id else None
        answered = (
            row.answered_at is not None
            or session.scalar(select(InboundMessage.id).where(InboundMessage.message_sid == f"web-{row.id}"))
            is not None
        )
        lang = patient.language if patient.language in TEXT else "en"
        day = (now.date() - enrollment.surgery_date).days if enrollment else 0
        ctx = message_context(
            services.settings,
            first_name=patient.first_name,
            language=lang,
            day=day,
            care_team=enrollment.care_team if enrollment else None,
        )
        try:
            text = services.renderer.render_sms(row.message, lang, ctx).text
        except TemplateError as exc:
            log.error(
                "check-in question template failed", extra={"outbox_id": row.id, "problem": exc.problem}
            )
            text = TEXT[lang]["title"]
        return _Question(row, patient, text, answered)


def _outbox_from_token(request: Request, token: str) -> int | Response:
    services = web_of(request).services
    try:
        payload = tokens.read_token(
            services.settings.secret_key,
            tokens.CHECKIN_SALT,
            token,
            tokens.CHECKIN_MAX_AGE,
            now=services.clock.now().timestamp(),
        )
    except tokens.InvalidToken as exc:
        web_of(request).metrics.inc(
            "checkin_form_rejected_total", reason="expired" if exc.expired else "forged"
        )
        return _page(
            request, 410 if exc.expired else 403, "en", message_key="expired" if exc.expired else "forged"
        )
    outbox_id = payload.get("o") if isinstance(payload, dict) else None
    if not isinstance(outbox_id, int):
        return _page(request, 403, "en", message_key="forged")
    return outbox_id


def make_nonce(secret: str, outbox_id: int, now: datetime) -> str:
    """The form's hidden field: signed (own salt) outbox id and issue time. The time comes from
    the service clock, not ``time.time()``, so the demo's simulated days agree with it."""
    return URLSafeSerializer(secret, salt=FORM_SALT).dumps({"o": outbox_id, "t": int(now.timestamp())})


def nonce_ok(secret: str, nonce: str, outbox_id: int, now: datetime) -> bool:
    try:
        data = URLSafeSerializer(secret, salt=FORM_SALT).loads(nonce)
    except BadSignature:
        return False
    if not isinstance(data, dict) or data.get("o") != outbox_id or not isinstance(data.get("t"), int):
        return False
    return bool(0 <= now.timestamp() - data["t"] <= FORM_MAX_AGE)


def _form_page(
    request: Request,
    q: _Question,
    *,
    status: int = 200,
    error: str | None = None,
    token: str,
    reply: str | None = None,
) -> HTMLResponse:
    services = web_of(request).services
    nonce = make_nonce(services.settings.secret_key, q.outbox_id, services.clock.now())
    return _page(
        request,
        status,
        q.language,
        question=q.text,
        token=token,
        nonce=nonce,
        error=error,
        reply=reply,
        max_answer=MAX_ANSWER,
    )


@router.get("/c/{token}")
async def show(request: Request, token: str, services: ServicesDep) -> Response:
    found = _outbox_from_token(request, token)
    if isinstance(found, Response):
        return found
    q = await in_db_thread(request, _load, services, found, services.clock.now())
    if q is None:
        return _page(request, 410, "en", message_key="gone")
    if q.answered:
        return _page(request, 200, q.language, message_key="already")
    return _form_page(request, q, token=token)


@router.post("/c/{token}")
async def answer(request: Request, token: str, state: WebDep) -> Response:
    services = state.services
    if not is_form(request.headers.get("content-type")):
        return Response("expected a form", status_code=415, media_type="text/plain")
    found = _outbox_from_token(request, token)
    if isinstance(found, Response):
        return found
    outbox_id = found
    try:
        fields = dict(parse_form(await request.body()))
    except ValueError:
        return Response("malformed form", status_code=400, media_type="text/plain")
    if not nonce_ok(services.settings.secret_key, fields.get("nonce", ""), outbox_id, services.clock.now()):
        state.metrics.inc("checkin_form_rejected_total", reason="nonce")
        return _page(request, 403, "en", message_key="forged")
    now = services.clock.now()
    q = await in_db_thread(request, _load, services, outbox_id, now)
    if q is None:
        return _page(request, 410, "en", message_key="gone")
    if q.answered:
        return _page(request, 200, q.language, message_key="already")
    text = fields.get("answer", "").strip()
    if not text:
        return _form_page(request, q, status=400, error=TEXT[q.language]["empty"], token=token)
    msg = inbound.InboundSms(
        message_sid=f"web-{outbox_id}",
        from_phone=None,
        body=text[:MAX_ANSWER],
        channel="web",
        outbox_id=outbox_id,
    )
    try:
        result = await in_db_thread(
            request, inbound.handle_sms, services, msg, now, assess=state.assess, write_lock=state.write_lock
        )
    except (OperationalError, DBAPIError):
        state.metrics.inc("inbound_errors_total", reason="database")
        log.error("web check-in not stored: database unavailable", extra={"outbox_id": outbox_id})
        return _page(request, 503, q.language, message_key="unavailable")
    if result.duplicate:
        return _page(request, 200, q.language, message_key="already")
    state.metrics.inc("inbound_messages_total", kind="web")
    if result.followup_outbox_id is not None:
        follow = await in_db_thread(request, _load, services, result.followup_outbox_id, now)
        if follow is not None:
            next_token = tokens.make_token(
                services.settings.secret_key, tokens.CHECKIN_SALT, {"o": result.followup_outbox_id}, now=now
            )
            return _form_page(request, follow, token=next_token)
    return _page(request, 200, q.language, message_key="thanks", reply=result.reply_text)
