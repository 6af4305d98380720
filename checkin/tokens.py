"""Signed, expiring tokens for links in emails (itsdangerous).

Tokens are signed, not encrypted: they carry only opaque ids, never patient data. Each purpose
has its own salt, so a check-in token can never be replayed as an alert acknowledgement.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

CHECKIN_SALT = "checkin.email-checkin"
ALERT_SALT = "checkin.alert-ack"
CHECKIN_MAX_AGE = 3 * 24 * 3600  # a check-in question is stale after a few days
ALERT_MAX_AGE = 7 * 24 * 3600
# A token stamped later than now (beyond clock skew between hosts) was not made by us at that
# time: with a leaked key it would never expire, so it is refused.
FUTURE_SKEW = 300


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
    """Return the payload; raises InvalidToken (``expired`` says which) on any problem,
    including a token stamped more than ``FUTURE_SKEW`` seconds after ``now``."""
    s = _serializer(secret, salt)
    # itsdangerous reads time.time(); tests and the demo's simulated clock pass ``now``.
    at = time.time() if now is None else now
    try:
        payload, signed_at = s.loads(token, max_age=None, return_timestamp=True)
        age = at - signed_at.timestamp()
        if age < -FUTURE_SKEW:
            raise BadSignature("stamped in the future")
        if age > max_age:
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


# ---- reply tokens ----------------------------------------------------------------------------
# An email reply is matched by the plus-address it was sent to: <local>+<outbox id>-<mac>@domain.
# Not itsdangerous: mail systems may lower-case a local part and cap it at 64 characters, so the
# token is short, lower-case base32 and read case-insensitively. It does not expire: the row it
# names says how old the question is.
REPLY_SALT = b"checkin.email-reply"
_REPLY_MAC_CHARS = 16  # 80 bits
_REPLY_TOKEN = re.compile(rf"([0-9]{{1,12}})-([a-z2-7]{{{_REPLY_MAC_CHARS}}})")


def _reply_mac(secret: str, outbox_id: int) -> str:
    digest = hmac.new(secret.encode(), REPLY_SALT + b":" + str(outbox_id).encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:_REPLY_MAC_CHARS]


def reply_token(secret: str, outbox_id: int) -> str:
    """The token for replies to outbox row ``outbox_id``: ``<id>-<16 base32 characters>``."""
    return f"{outbox_id}-{_reply_mac(secret, outbox_id)}"


def reply_address(base: str, secret: str, outbox_id: int) -> str:
    """``base`` (``checkin@example.org``) with the row's token as its plus-detail."""
    local, _, domain = base.rpartition("@")
    return f"{local}+{reply_token(secret, outbox_id)}@{domain}"


def read_reply_token(secret: str, token: str) -> int | None:
    """The outbox id a reply token names, or None when it is malformed or not ours."""
    m = _REPLY_TOKEN.fullmatch(token.strip().lower())
    if m is None:
        return None
    outbox_id = int(m.group(1))
    return outbox_id if hmac.compare_digest(m.group(2), _reply_mac(secret, outbox_id)) else None
