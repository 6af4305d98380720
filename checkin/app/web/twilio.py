"""Twilio webhooks: verify, parse, dedupe, act, and always answer politely (Twilio retries
anything that is not a 2xx, so a reply we cannot use still gets a 200 once it is stored).

``POST /webhooks/twilio/sms``     inbound SMS → ``checkin.inbound.process`` → TwiML reply
``POST /webhooks/twilio/status``  delivery status callback (``?outbox=ID``) → ``checkin.outbound.delivery``

Signature policy:

- Every request is checked with ``twilio.request_validator.RequestValidator(auth_token)``
  against ``CHECKIN_PUBLIC_URL`` + path + query — the URL Twilio was given, not the one the
  proxy shows us (behind TLS termination ``request.url`` says ``http://10.0.0.5:8000/…`` and
  would never match). The URL with and without the default port are both accepted; the
  configured one is computed first, the other only when that does not match (``signed``).
- Forged, missing, or signed for another URL or token → 403, nothing stored,
  ``webhook_signature_failures_total`` incremented. Only the auth-token (HMAC-SHA1) scheme is
  accepted; a request claiming another algorithm is checked as SHA1 and so fails.
- **Never skipped.** Without ``TWILIO_AUTH_TOKEN`` (console mode) or without
  ``CHECKIN_PUBLIC_URL`` there is nothing to verify against, so webhooks answer 503 and store
  nothing. A demo that wants inbound SMS sets a made-up Twilio account and token (and points
  ``CHECKIN_TWILIO_API_URL`` at the local fake) and signs its requests with that token.
- A signed request from another ``AccountSid`` than ours is refused too (403).

After verification: a request without ``MessageSid`` is answered 200 with empty TwiML (Twilio
would only retry it). A ``MessageSid`` that is not ``SM``/``MM`` and 32 hex digits, or differs
from ``SmsSid``, is refused with 400 (inbound SMS and status callbacks). Why: Twilio's
signature concatenates names and values without separators, so a captured request re-posted as
``MessageSid=<sid>NumMedia0`` (without ``NumMedia``) keeps a valid signature; only the SID's
fixed shape, and its second copy, tell the replay from the original, which the MessageSid
dedupe then drops. Columns hold what Twilio sends (``From`` 64 characters, ``ErrorCode`` 32,
migration 0012); anything longer is cut to fit rather than failing the insert with a 503 that
Twilio would retry forever. A number that matches no patient gets at most one reply a day,
emergencies excepted (``checkin.app.web.unknown_senders``). A database failure is 503 (Twilio
may retry; the insert is idempotent); any other processing failure stores the raw message for a
later look, logs it, and still sends the patient a safe generic reply naming the emergency
number — never a 500 and silence.
"""

from __future__ import annotations

import hmac
import logging
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlparse
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator, add_port, remove_port

from checkin.app.web.deps import web_of
from checkin.app.web.limits import in_db_thread, is_form, parse_form
from checkin.app.web.unknown_senders import may_withhold, stay_quiet
from checkin.core import replies
from checkin.deps import Services
from checkin.inbound import process as inbound
from checkin.store import audit
from checkin.store.db import again_if_disconnected

log = logging.getLogger(__name__)
router = APIRouter()
SIGNATURE_HEADER = "x-twilio-signature"
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-f]{32}")
ERROR_CODE_MAX = 32  # delivery_events.error_code, outbox.last_error_code
FROM_MAX = 64  # inbound_messages.from_phone (whatsapp:+…, messenger:… are longer than a phone)
TWIML = "application/xml"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def twiml(text: str | None) -> Response:
    """A TwiML ``<Response>`` with one ``<Message>`` of ``text`` (none when empty): what
    twilio's ``MessagingResponse`` writes, character for character (tests/web/test_twiml.py
    compares them), without building and serialising an element tree per request, which was
    4 % of a web process's busy samples under webhook load."""
    if not text:
        return Response(XML_DECLARATION + "<Response />", media_type=TWIML)
    return Response(
        f"{XML_DECLARATION}<Response><Message>{escape(text)}</Message></Response>", media_type=TWIML
    )


def _plain(status: int, text: str) -> Response:
    # Error bodies never echo input (no PHI, no oracle for forgers).
    return Response(text, status_code=status, media_type="text/plain")


class Verified:
    """The outcome of ``verify``: ``form`` on success, else a ready ``response``."""

    def __init__(
        self, form: ImmutableMultiDict[str, str] | None = None, response: Response | None = None
    ) -> None:
        self.form, self.response = form, response


async def verify(request: Request, endpoint: str) -> Verified:
    """Shape checks, then the signature. Nothing is stored before this returns a form."""
    state = web_of(request)
    metrics = state.metrics
    settings = state.services.settings
    if not is_form(request.headers.get("content-type")):
        metrics.inc("webhook_rejected_total", endpoint=endpoint, reason="content_type")
        return Verified(response=_plain(415, "expected application/x-www-form-urlencoded"))
    if settings.twilio is None or not settings.public_url:
        metrics.inc("webhook_rejected_total", endpoint=endpoint, reason="not_configured")
        log.warning(
            "Twilio webhook refused: TWILIO_AUTH_TOKEN or CHECKIN_PUBLIC_URL not set",
            extra={"endpoint": endpoint},
        )
        return Verified(response=_plain(503, "webhooks are not configured"))
    body = await request.body()
    try:
        pairs = parse_form(body)
    except ValueError:
        metrics.inc("webhook_rejected_total", endpoint=endpoint, reason="malformed")
        return Verified(response=_plain(400, "malformed form body"))
    form = ImmutableMultiDict(pairs)
    signature = request.headers.get(SIGNATURE_HEADER)
    # The path and query as the request carried them: what ``request.url`` holds for these fixed
    # routes, without building and re-parsing a whole URL per webhook (1.5 % of the busy samples).
    path, query = request.scope["path"], request.scope.get("query_string", b"").decode()
    url = settings.public_url + path + (f"?{query}" if query else "")
    validator: RequestValidator = state.validator
    if not signature or not signed(validator, url, form, signature):
        metrics.inc("webhook_signature_failures_total", endpoint=endpoint)
        log.warning(
            "Twilio webhook signature rejected",
            extra={"endpoint": endpoint, "had_signature": bool(signature)},
        )
        return Verified(response=_plain(403, "forbidden"))
    account = form.get("AccountSid")
    if account and account != settings.twilio.account_sid:
        metrics.inc("webhook_signature_failures_total", endpoint=endpoint, reason="account")
        log.warning("Twilio webhook for another account refused", extra={"endpoint": endpoint})
        return Verified(response=_plain(403, "forbidden"))
    return Verified(form=form)


def signed(validator: RequestValidator, url: str, form: ImmutableMultiDict[str, str], signature: str) -> bool:
    """Whether ``signature`` is twilio's HMAC of ``url`` and ``form``, or of ``url`` with the
    default port added or removed. ``RequestValidator.validate`` computes both every time; a
    genuine request is signed for the URL we configured, so that one is computed first and the
    second only on a mismatch (the HMAC was 5 % of a web process's webhook CPU)."""
    if _same(validator.compute_signature(url, form), signature):
        return True
    parsed = urlparse(url)
    other = remove_port(parsed) if parsed.port else add_port(parsed)
    return _same(validator.compute_signature(other, form), signature)


def _same(computed: str, signature: str) -> bool:
    return hmac.compare_digest(computed.encode(), signature.encode())  # constant time


async def inbound_sms(request: Request) -> Response:
    # web_of, not a WebDep parameter: resolving a FastAPI dependency was 6 % of the busy
    # samples of a web process under webhook load (py-spy, tests/benchmarks/webhook_throughput).
    state = web_of(request)
    checked = await verify(request, "sms")
    if checked.response is not None:
        return checked.response
    form = checked.form
    assert form is not None
    sid = form.get("MessageSid") or form.get("SmsSid")
    if not sid:
        state.metrics.inc("webhook_rejected_total", endpoint="sms", reason="no_message_sid")
        return twiml(None)
    if not MESSAGE_SID.fullmatch(sid) or form.get("SmsSid") != sid:
        state.metrics.inc("webhook_rejected_total", endpoint="sms", reason="bad_message_sid")
        log.warning(
            "Twilio webhook with a malformed or mismatched MessageSid refused", extra={"endpoint": "sms"}
        )
        return _plain(400, "malformed MessageSid")
    sender = form.get("From") or None
    msg = inbound.InboundSms(
        message_sid=sid,
        from_phone=sender[:FROM_MAX] if sender else None,
        to_phone=form.get("To"),
        body=form.get("Body", ""),
    )
    services = state.services
    now = services.clock.now()
    try:
        result = await in_db_thread(
            request, inbound.handle_sms, services, msg, now, assess=state.assess, write_lock=state.write_lock
        )
    except (OperationalError, DBAPIError) as exc:
        state.metrics.inc("inbound_errors_total", reason="database")
        log.error(
            "inbound SMS not stored: database unavailable",
            extra={"error": type(exc).__name__, "message_sid": msg.message_sid},
        )
        return _plain(503, "temporarily unavailable")
    except Exception:
        state.metrics.inc("inbound_errors_total", reason="processing")
        log.exception(
            "inbound SMS processing failed; stored unprocessed", extra={"message_sid": msg.message_sid}
        )
        return twiml(await in_db_thread(request, _store_unprocessed, services, msg, now))
    state.metrics.inc("inbound_messages_total", kind=_kind(result))
    # Checked here first: a patient's reply (nearly every one) then needs no second trip
    # through the thread pool, which cost as much CPU as a short query.
    if may_withhold(result, msg.from_phone) and await in_db_thread(
        request, stay_quiet, services, result, msg.from_phone, now
    ):
        state.metrics.inc("replies_withheld_total", reason="unknown_sender")
        return twiml(None)
    return twiml(result.reply_text)


def _kind(result: inbound.InboundResult) -> str:
    if result.duplicate:
        return "duplicate"
    return result.keyword or result.matched


def _store_unprocessed(services: Services, msg: inbound.InboundSms, now: datetime) -> str | None:
    """Keep the text (``processed_at`` stays NULL, so it can be found and re-run) and answer with
    the generic reply; None if even that fails or it was a replay."""
    try:
        with services.sessions.begin() as session:
            new_id = inbound.insert_once(session, msg, now)
            if new_id is None:
                return None
            audit.record(
                session,
                at=now,
                actor="system",
                action="inbound.failed",
                subject=f"inbound:{new_id}",
                channel=msg.channel,
                message_sid=msg.message_sid,
            )
    except Exception:
        log.exception("could not store the unprocessed inbound SMS", extra={"message_sid": msg.message_sid})
    number = services.settings.emergency_number
    return (
        replies.generic_fallback("en", emergency=number)
        + " / "
        + replies.generic_fallback("es", emergency=number)
    )


async def status_callback(request: Request) -> Response:
    state = web_of(request)  # as in inbound_sms: no per-request dependency resolution
    checked = await verify(request, "status")
    if checked.response is not None:
        return checked.response
    form = checked.form
    assert form is not None
    sid, status = (
        form.get("MessageSid") or form.get("SmsSid"),
        form.get("MessageStatus") or form.get("SmsStatus"),
    )
    raw_outbox = request.query_params.get("outbox", "")
    outbox_id = int(raw_outbox) if raw_outbox.isdigit() and len(raw_outbox) < 19 else None
    if not sid or not status:
        state.metrics.inc("status_callbacks_total", result="incomplete")
        return Response(status_code=200)
    if not MESSAGE_SID.fullmatch(sid) or form.get("SmsSid", sid) != sid:
        state.metrics.inc("status_callbacks_total", result="bad_message_sid")
        return _plain(400, "malformed MessageSid")
    services = state.services
    now = services.clock.now()

    def record() -> Any:
        from checkin.outbound.delivery import record_status

        with services.sessions.begin() as session:
            return record_status(
                session,
                provider_id=sid,  # 34 characters: MESSAGE_SID checked above
                outbox_id=outbox_id,
                status=status[:16],
                error_code=(form.get("ErrorCode") or "")[:ERROR_CODE_MAX] or None,
                now=now,
            )

    try:
        # Idempotent (one delivery event per message and status), so safe to run twice.
        await in_db_thread(request, again_if_disconnected, record, provider_id=sid)
    except (OperationalError, DBAPIError) as exc:
        state.metrics.inc("status_callbacks_total", result="database")
        log.error("status callback not stored: database unavailable", extra={"error": type(exc).__name__})
        return _plain(503, "temporarily unavailable")
    except Exception:
        # Unknown or old messages are the delivery module's business; a bug there must not make
        # Twilio hammer us, so it is logged and counted.
        state.metrics.inc("status_callbacks_total", result="error")
        log.exception("status callback failed", extra={"outbox_id": outbox_id})
        return Response(status_code=200)
    state.metrics.inc("status_callbacks_total", result="recorded")
    return Response(status_code=200)


# Plain Starlette routes, not FastAPI's: these handlers take the Request and nothing else, and
# FastAPI's per-request machinery around an endpoint (dependency solving, an exit stack, the
# endpoint's run wrapper) cost 43 us of CPU against 21 for the same empty handler (measured).
router.add_route("/webhooks/twilio/sms", inbound_sms, methods=["POST"])
router.add_route("/webhooks/twilio/status", status_callback, methods=["POST"])
