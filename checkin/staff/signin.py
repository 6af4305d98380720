"""Signing in: password (and TOTP when the account has one), throttled, then a server-side session.

Contract of ``sign_in``:
- **Throttled per account and per address.** ``ACCOUNT_LIMIT`` failed attempts for one email,
  or ``ADDRESS_LIMIT`` from one client address, within ``WINDOW`` refuse every further attempt
  (even a correct one) until the window has passed. Per-address is looser: a hospital's nurses
  often share one outgoing address, and one person's typos must not lock out a ward.
- **One answer for every failure** (unknown email, wrong password, wrong code, disabled): the
  caller shows the same message, so the form does not reveal which accounts exist. The reason
  is recorded (``sign_in_attempts`` and the audit log) for the security officer.
- **Sessions are rows.** The browser gets a random 256-bit token; the row stores its sha256, a
  CSRF secret, the last activity and an absolute expiry. ``current`` refuses a session idle for
  longer than ``idle``, revoked, past its expiry, or whose account is disabled, and records the
  activity (at most once a minute, so a polling worklist does not write on every poll).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from checkin.staff import passwords
from checkin.staff.accounts import needs_totp
from checkin.store import audit
from checkin.store.models import SignInAttempt, Staff, StaffSession

ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
ABSOLUTE_LIFETIME = timedelta(hours=12)  # a shift; then sign in again whatever the activity
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SignedIn:
    token: str  # goes in the cookie, nowhere else
    csrf: str
    staff_id: int


@dataclass(frozen=True)
class Refused:
    reason: str  # throttled | unknown | password | totp_required | totp | disabled | no_password


@dataclass(frozen=True)
class Current:
    """The signed-in person of a request."""

    session_id: str
    staff_id: int
    email: str
    name: str
    role: str
    team: str
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _failures(session: Session, column: InstrumentedAttribute[str], value: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(SignInAttempt)
            .where(column == value, SignInAttempt.at > since, SignInAttempt.ok.is_(False))
        )
        or 0
    )


def throttled(session: Session, email: str, address: str, now: datetime) -> bool:
    since = now - WINDOW
    return (
        _failures(session, SignInAttempt.email, email, since) >= ACCOUNT_LIMIT
        or _failures(session, SignInAttempt.address, address, since) >= ADDRESS_LIMIT
    )


def sign_in(
    session: Session,
    *,
    email: str,
    password: str,
    code: str,
    address: str,
    now: datetime,
    nurses_need_totp: bool,
) -> SignedIn | Refused:
    """Check the credentials and open a session (see the module docstring). Adds to the
    caller's transaction; the caller commits whatever the outcome (the attempt is recorded)."""
    email = email.strip().lower()[:254]
    address = address[:64]
    staff = session.scalar(select(Staff).where(Staff.email == email))
    reason: str | None = None
    if throttled(session, email, address, now):
        reason = "throttled"
    elif not passwords.verify(staff.password_hash if staff else None, password):
        reason = (
            "unknown" if staff is None else ("no_password" if staff.password_hash is None else "password")
        )
    elif staff is None or not staff.active:
        reason = "disabled"
    elif staff.totp_secret is None and needs_totp(staff, nurses_need_totp):
        reason = "totp_required"  # an admin who never enrolled a second factor cannot sign in
    elif staff.totp_secret is not None and not passwords.totp_ok(staff.totp_secret, code, now):
        reason = "totp"
    refused = _attempt(session, email=email, address=address, now=now, reason=reason, staff=staff)
    if refused is not None:
        return refused
    assert staff is not None and staff.password_hash is not None
    if passwords.needs_rehash(staff.password_hash):
        staff.password_hash = passwords.hash_password(password)
    return _open_session(session, staff, address, now, method="password")


def sign_in_sso(
    session: Session, *, email: str, mfa: bool, address: str, now: datetime, nurses_need_totp: bool
) -> SignedIn | Refused:
    """Open a session for ``email`` as vouched for by the OpenID provider
    (``checkin.staff.oidc``): an active account with that email, throttled like a password
    sign-in; an account that needs a second factor needs ``mfa`` from the provider (its TOTP
    is not asked again). Recorded and audited like ``sign_in`` (``method=oidc``)."""
    email = email.strip().lower()[:254]
    address = address[:64]
    staff = session.scalar(select(Staff).where(Staff.email == email))
    reason: str | None = None
    if throttled(session, email, address, now):
        reason = "throttled"
    elif staff is None:
        reason = "unknown"  # no account is created from a provider's say-so
    elif not staff.active:
        reason = "disabled"
    elif not mfa and (staff.totp_secret is not None or needs_totp(staff, nurses_need_totp)):
        reason = "sso_mfa_required"
    refused = _attempt(
        session, email=email, address=address, now=now, reason=reason, staff=staff, method="oidc"
    )
    if refused is not None:
        return refused
    assert staff is not None
    return _open_session(session, staff, address, now, method="oidc")


def refuse_sso(session: Session, *, reason: str, address: str, now: datetime) -> Refused:
    """Record a single sign-on that failed before we knew who it was (bad state, a token that
    did not verify): counted against the address, audited with the reason code."""
    refused = _attempt(session, email="", address=address[:64], now=now, reason=reason[:32], method="oidc")
    assert refused is not None
    return refused


def _attempt(
    session: Session,
    *,
    email: str,
    address: str,
    now: datetime,
    reason: str | None,
    staff: Staff | None = None,
    method: str = "password",
) -> Refused | None:
    """Record a sign-in attempt (it counts towards the throttle); a refusal (``reason``) is
    also audited, under the email tried (``sso`` when none is known yet)."""
    session.add(SignInAttempt(at=now, email=email, address=address, ok=reason is None, reason=reason or "ok"))
    if reason is None:
        return None
    audit.record(
        session,
        at=now,
        actor=email or "sso",
        action="staff.sign_in_refused",
        subject=f"staff:{staff.id}" if staff else None,
        reason=reason,
        method=method,  # as on staff.signed_in: a review can tell password from SSO refusals
    )
    return Refused(reason)


def _open_session(session: Session, staff: Staff, address: str, now: datetime, *, method: str) -> SignedIn:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            id=token_id(token),
            staff_id=staff.id,
            csrf=csrf,
            address=address,
            created_at=now,
            last_seen_at=now,
            expires_at=now + ABSOLUTE_LIFETIME,
        )
    )
    audit.record(
        session,
        at=now,
        actor=staff.email,
        action="staff.signed_in",
        subject=f"staff:{staff.id}",
        method=method,
    )
    return SignedIn(token, csrf, staff.id)


def current(session: Session, token: str | None, *, now: datetime, idle: timedelta) -> Current | str:
    """The session's person, or why there is none: ``none``, ``expired`` (idle or past its
    lifetime), ``revoked``, ``disabled``. A disabled account's session is revoked here too."""
    if not token or len(token) > 100:
        return "none"
    row = session.execute(
        select(StaffSession, Staff)
        .join(Staff, Staff.id == StaffSession.staff_id)
        .where(StaffSession.id == token_id(token))
    ).first()
    if row is None:
        return "none"
    sess, staff = row
    if sess.revoked_at is not None or not staff.active:
        # A cookie that outlived its session (signed out, account disabled): someone is using
        # a browser that should no longer get in, which the security officer wants to see.
        reason = "disabled" if not staff.active else "revoked"
        sess.revoked_at = sess.revoked_at or now
        audit.record(
            session,
            at=now,
            actor=staff.email,
            action="staff.session_refused",
            subject=f"staff:{staff.id}",
            reason=reason,
        )
        return reason
    if now >= sess.expires_at or now - sess.last_seen_at > idle:
        sess.revoked_at = now
        return "expired"
    if now - sess.last_seen_at >= TOUCH_EVERY:
        sess.last_seen_at = now
    return Current(sess.id, staff.id, staff.email, staff.name, staff.role, staff.team, sess.csrf)


def sign_out(session: Session, session_id: str, *, now: datetime, actor: str) -> None:
    session.execute(
        update(StaffSession)
        .where(StaffSession.id == session_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    audit.record(session, at=now, actor=actor, action="staff.signed_out")
