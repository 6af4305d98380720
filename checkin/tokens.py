"""Signed, expiring tokens for links in emails (itsdangerous).

Tokens are signed, not encrypted: they carry only opaque ids, never patient data. Each purpose
has its own salt, so a check-in token can never be replayed as an alert acknowledgement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

CHECKIN_SALT = "checkin.email-checkin"
ALERT_SALT = "checkin.alert-ack"
CHECKIN_MAX_AGE = 3 * 24 * 3600  # a check-in question is stale after a few days
ALERT_MAX_AGE = 7 * 24 * 3600


class InvalidToken(Exception):
    def __init__(self, expired: bool) -> None:
        self.expired = expired
        super().__init__("link expired" if expired else "link is not valid")


def _serializer(secret: str, salt: str, stamp: int | None = None) -> URLSafeTimedSerializer:
    if stamp is None:
        return URLSafeTimedSerializer(secret, salt=salt)
    fixed: int = stamp  # bound here so the signer's method sees an int, not an Optional

    class StampedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return fixed

    return URLSafeTimedSerializer(secret, salt=salt, signer=StampedSigner)


def make_token(secret: str, salt: str, payload: Any, *, now: datetime | None = None) -> str:
    """Sign ``payload``, stamped at ``now`` (the service clock; default the wall clock), so a
    token's age is judged against the same clock that ``read_token`` is given."""
    return _serializer(secret, salt, None if now is None else int(now.timestamp())).dumps(payload)


def read_token(secret: str, salt: str, token: str, max_age: int, *, now: float | None = None) -> Any:
    """Return the payload; raises InvalidToken (``expired`` says which) on any problem."""
    s = _serializer(secret, salt)
    try:
        if now is None:
            return s.loads(token, max_age=max_age)
        # itsdangerous reads time.time(); tests and the demo's simulated clock pass ``now``.
        payload, signed_at = s.loads(token, max_age=None, return_timestamp=True)
        if now - signed_at.timestamp() > max_age:
            raise SignatureExpired("expired")
        return payload
    except SignatureExpired:
        raise InvalidToken(expired=True) from None
    except BadSignature:
        raise InvalidToken(expired=False) from None


def checkin_link(public_url: str | None, secret: str, outbox_id: int, *, now: datetime | None = None) -> str:
    """The one-question web form for an emailed check-in (``/c/<token>``)."""
    base = (public_url or "http://localhost:8000").rstrip("/")
    return f"{base}/c/{make_token(secret, CHECKIN_SALT, {'o': outbox_id}, now=now)}"
