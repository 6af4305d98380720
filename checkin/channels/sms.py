"""SMS through Twilio's REST API with the official ``twilio`` library.

Errors are mapped to a ``ChannelError`` with a provider-neutral ``refusal`` in
``checkin.channels.twilio_errors`` (its docstring has the table), so no Twilio code is read
outside these two modules.

The library makes exactly one HTTP attempt: ``TwilioHttpClient`` retries nothing unless
``max_retries`` is given (we never give it), and its ``requests`` adapter uses ``Retry(0,
read=False)``.

``TwilioRestException`` does not carry response headers, so ``Retry-After`` is read from the
response our own ``TwilioHttpClient`` subclass remembers (per thread). With a caller-supplied
``http_client`` that is not ours, ``retry_after`` is ``None``.

Nothing logged here contains the phone number or the body: logs name ``outbox_id`` and
``message.reference``. Twilio's error text can quote the number, so it is not copied into
``ChannelError.reason`` and the library exception is not chained (``from None``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from checkin.channels.base import OutgoingMessage, ProviderMessage, Receipt
from checkin.channels.twilio_errors import classify_transport_error, classify_twilio_error, parse_retry_after
from checkin.errors import ChannelError, ConfigError
from checkin.states import ChannelName

log = logging.getLogger(__name__)

# twilio-python logs every request URL and its query parameters at INFO; a messages.list
# query carries the patient's phone number. Its client gets this logger, kept at WARNING,
# so those lines never reach the application's handlers whatever the root level is.
_TWILIO_HTTP_LOG = logging.getLogger("checkin.channels.sms.twilio_http")
_TWILIO_HTTP_LOG.setLevel(logging.WARNING)

# twilio's Client falls back to os.environ when ``environment`` is falsy (TWILIO_EDGE,
# TWILIO_REGION would silently reroute requests). A non-empty mapping stops that: channels
# get all their configuration passed in.
_NO_ENVIRONMENT = {"CHECKIN": "configuration is passed in, not read from the environment"}


@dataclass(frozen=True, kw_only=True)
class TwilioConfig:
    """How to reach Twilio. Exactly one of ``from_number`` and ``messaging_service_sid``.

    ``status_callback_base`` is our public base URL (``https://checkin.example.org``); when set,
    each message asks Twilio to post its status to
    ``{base}/webhooks/twilio/status?outbox={outbox_id}``. ``api_base_url`` redirects every
    ``*.twilio.com`` request to another server (mocks, fakes); ``None`` in production.
    ``timeout`` (seconds) bounds connect and each read: the library's default is none.
    """

    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback_base: str | None = None
    api_base_url: str | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.account_sid:
            raise ConfigError("TwilioConfig.account_sid", "is empty")
        if not self.auth_token:
            raise ConfigError("TwilioConfig.auth_token", "is empty")
        if bool(self.from_number) == bool(self.messaging_service_sid):
            raise ConfigError(
                "TwilioConfig.from_number",
                "set exactly one of from_number and messaging_service_sid",
            )
        if not self.timeout > 0:
            raise ConfigError("TwilioConfig.timeout", f"must be > 0, not {self.timeout!r}")
        for name in ("status_callback_base", "api_base_url"):
            value = getattr(self, name)
            if value is not None:
                parts = urlsplit(value)
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise ConfigError(f"TwilioConfig.{name}", "must be an http(s) URL")
                if parts.query or parts.fragment:
                    raise ConfigError(f"TwilioConfig.{name}", "must not have a query or fragment")


class CheckinTwilioHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """``TwilioHttpClient`` with two additions, both through the library's documented
    ``http_client=`` seam:

    - when ``base_url`` is given, requests to ``*.twilio.com`` go to that base instead;
    - the headers of the last response on this thread stay readable (``last_headers``),
      because ``TwilioRestException`` drops them and a 429's ``Retry-After`` lives there.
    """

    def __init__(self, *, timeout: float, base_url: str | None = None, connections: int = 64) -> None:
        super().__init__(timeout=timeout, logger=_TWILIO_HTTP_LOG)
        self._redirect = urlsplit(base_url) if base_url else None
        self._local = threading.local()
        # Keep a connection per sending thread: the library's pool holds min(32, cores + 4),
        # so on a small host most of a worker's concurrent sends would open (and handshake
        # TLS for) a fresh connection each time.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=connections)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # requests reads proxy and CA-bundle variables from the environment on every call
        # (a scan of os.environ that cost a fifth of a send's CPU). Read them once instead,
        # for the one host we talk to; they still apply as before.
        target = base_url or "https://api.twilio.com"
        given: dict[str, str] = getattr(self, "proxy", None) or {}
        self.proxy = given or get_environ_proxies(target)
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.trust_env = False

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        self._local.headers = None
        if self._redirect is not None:
            u = urlsplit(url)
            if u.hostname and (u.hostname == "twilio.com" or u.hostname.endswith(".twilio.com")):
                url = urlunsplit((self._redirect.scheme, self._redirect.netloc, u.path, u.query, u.fragment))
        response = super().request(method, url, *args, **kwargs)
        self._local.headers = response.headers
        return response

    def last_headers(self) -> Mapping[str, str] | None:
        """Headers of this thread's last response, or ``None`` if it got none."""
        headers: Mapping[str, str] | None = getattr(self._local, "headers", None)
        return headers


class TwilioSmsChannel:
    """Sends SMS through Twilio. Thread-safe: the twilio ``Client`` keeps no per-send state.

    ``http_client`` replaces the HTTP client (then its timeout is the caller's business and
    ``retry_after`` is only filled if it has ``last_headers()`` like ours).
    """

    def __init__(self, config: TwilioConfig, http_client: HttpClient | None = None) -> None:
        self._config = config
        self._http: HttpClient = http_client or CheckinTwilioHttpClient(
            timeout=config.timeout, base_url=config.api_base_url
        )
        self._client = Client(
            config.account_sid,
            config.auth_token,
            http_client=self._http,
            environment=_NO_ENVIRONMENT,
        )

    def status_callback_url(self, outbox_id: int) -> str | None:
        """The status callback URL for one outbox row, or ``None`` when no base is set."""
        base = self._config.status_callback_base
        if base is None:
            return None
        return f"{base.rstrip('/')}/webhooks/twilio/status?outbox={outbox_id}"

    def send(self, message: OutgoingMessage) -> Receipt:
        """POST one Messages.json create. Raises ``ChannelError`` as in the module table."""
        if message.channel != ChannelName.SMS:
            raise ChannelError(
                f"TwilioSmsChannel cannot send a {message.channel!r} message",
                permanent=True,
                code="wrong-channel",
            )
        kwargs: dict[str, Any] = {"to": message.to, "body": message.text}
        if self._config.messaging_service_sid:
            kwargs["messaging_service_sid"] = self._config.messaging_service_sid
        else:
            kwargs["from_"] = self._config.from_number
        callback = self.status_callback_url(message.outbox_id)
        if callback is not None:
            kwargs["status_callback"] = callback

        try:
            created = self._client.messages.create(**kwargs)
        except (TwilioRestException, TwilioServiceException) as exc:
            error = classify_twilio_error(exc.status, exc.code, self._retry_after())
        except requests.RequestException as exc:
            error = classify_transport_error(exc, self._config.timeout)
        except (ValueError, TwilioException) as exc:
            # A 2xx whose body we could not read: Twilio may well have queued it.
            error = ChannelError(
                f"unreadable Twilio response ({type(exc).__name__})",
                permanent=False,
                ambiguous=True,
            )
        else:
            sid = created.sid
            if not sid:
                error = ChannelError("Twilio answered without a message SID", permanent=False, ambiguous=True)
            else:
                status = _status_text(created.status)
                log.info(
                    "sms accepted",
                    extra={
                        "event": "channel.accepted",
                        "outbox_id": message.outbox_id,
                        "patient_ref": message.reference,
                        "provider_id": sid,
                        "status": status,
                    },
                )
                return Receipt(provider_id=sid, status=status)

        log.warning(
            "sms failed",
            extra={
                "event": "channel.failed",
                "outbox_id": message.outbox_id,
                "patient_ref": message.reference,
                "code": error.code,
                "refusal": error.refusal,
                "permanent": error.permanent,
                "ambiguous": error.ambiguous,
                "retry_after": error.retry_after,
                "reason": error.reason,
            },
        )
        raise error from None

    def list_recent(self, to: str, since: datetime, *, limit: int = 100) -> list[ProviderMessage]:
        """Messages Twilio lists for ``to`` (and our ``from_number`` when we send from one)
        with ``DateSent`` after ``since``; at most ``limit``, newest first as Twilio returns.

        A message Twilio accepted but has not sent yet has no ``DateSent`` and may be missing
        here: reconciliation should look again later rather than conclude "not sent" at once.
        Raises ``ValueError`` for a naive ``since``; ``ChannelError`` (never ambiguous) when
        Twilio cannot answer.
        """
        if since.tzinfo is None:
            raise ValueError("since must be an aware datetime")
        kwargs: dict[str, Any] = {
            "to": to,
            # The library formats with a literal "Z" and no conversion: hand it UTC.
            "date_sent_after": since.astimezone(UTC),
            "limit": limit,
        }
        if self._config.from_number:
            kwargs["from_"] = self._config.from_number
        try:
            records = self._client.messages.list(**kwargs)
        except (TwilioRestException, TwilioServiceException) as exc:
            mapped = classify_twilio_error(exc.status, exc.code, self._retry_after())
        except requests.RequestException as exc:
            mapped = classify_transport_error(exc, self._config.timeout)
        except (ValueError, TwilioException) as exc:
            mapped = ChannelError(f"unreadable Twilio list ({type(exc).__name__})", permanent=False)
        else:
            return [
                ProviderMessage(
                    provider_id=r.sid or "",
                    to=r.to or "",
                    body=r.body or "",
                    date_created=r.date_created,
                    status=_status_text(r.status),
                )
                for r in records
            ]
        # A GET changes nothing at Twilio, so a failed list is never ambiguous.
        raise ChannelError(
            f"listing messages failed: {mapped.reason}",
            permanent=mapped.permanent,
            code=mapped.code,
            retry_after=mapped.retry_after,
        ) from None

    def _retry_after(self) -> float | None:
        last_headers = getattr(self._http, "last_headers", None)
        headers = last_headers() if callable(last_headers) else None
        return parse_retry_after(headers) if headers else None


def _status_text(status: object) -> str:
    value = getattr(status, "value", status)
    return "" if value is None else str(value)


__all__ = [
    "CheckinTwilioHttpClient",
    "TwilioConfig",
    "TwilioSmsChannel",
]
