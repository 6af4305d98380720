"""Password hashing (argon2id, via argon2-cffi) and TOTP second factors (pyotp).

Why argon2id: it is memory-hard, the current OWASP first choice, and argon2-cffi ships wheels
for every platform we run on. The library's defaults (RFC 9106 "low memory" profile) are kept;
``needs_rehash`` lets a later change of parameters upgrade hashes at the next sign-in.
"""

from __future__ import annotations

from datetime import datetime

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 256  # hashing a megabyte "password" is a denial of service, not a password
_hasher = PasswordHasher()
# A real hash of a random string: verifying against it when the account does not exist takes as
# long as a real check, so response time does not reveal which emails have accounts.
_DUMMY = _hasher.hash("no-such-account-placeholder")


def problem(password: str) -> str | None:
    """Why ``password`` is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if not password.strip():
        return "must not be blank"
    return None


def hash_password(password: str) -> str:
    """The argon2id hash of ``password``; raises ValueError if it is not acceptable."""
    why = problem(password)
    if why is not None:
        raise ValueError(f"password {why}")
    return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no password set, always False, but takes
    the same time)."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (as text or a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def totp_ok(secret: str | None, code: str, now: datetime) -> bool:
    """Whether ``code`` is the current 6-digit code (one 30 s step of clock drift allowed)."""
    code = code.strip().replace(" ", "")
    if not secret or len(code) != 6 or not code.isdigit():
        return False
    return bool(pyotp.TOTP(secret).verify(code, for_time=now, valid_window=1))


def totp_now(secret: str, now: datetime) -> str:
    """The code an authenticator shows at ``now`` (tests and the demo)."""
    return str(pyotp.TOTP(secret).at(now))
