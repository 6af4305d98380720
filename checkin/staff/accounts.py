"""Staff accounts: add, list, disable, and the one-time set-password link.

Contract:
- ``add`` creates an account with no password and returns a one-time token for the
  set-password page (signed, ``SETUP_MAX_AGE``; only a hash of its nonce is stored, and using
  it clears that, so the link works once). Admins, and nurses when the setting asks for it, get
  a TOTP secret that the set-password page shows once and confirms with a code.
- ``disable`` revokes every live session at once (a disabled account's open browser is
  refused on its next request).
- Every change is audited with ``actor`` (the CLI passes ``cli:<user>``). Emails are stored
  lower-case, so sign-in is case-insensitive.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from checkin import tokens
from checkin.staff import passwords
from checkin.store import audit
from checkin.store.db import rowcount
from checkin.store.models import Staff, StaffSession

ROLES = ("nurse", "admin")
SETUP_SALT = "checkin.staff-set-password"
SETUP_MAX_AGE = 3 * 24 * 3600


class AccountError(ValueError):
    """Bad input for an account change; the message names the field."""


@dataclass(frozen=True)
class Added:
    staff_id: int
    email: str
    setup_token: str | None


def normal_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise AccountError(f"email: {email!r} is not an email address")
    return email


def needs_totp(staff: Staff, nurses_need_totp: bool) -> bool:
    return staff.role == "admin" or nurses_need_totp


def add(
    session: Session,
    *,
    email: str,
    name: str,
    role: str,
    team: str,
    now: datetime,
    secret_key: str,
    actor: str,
    nurses_need_totp: bool = False,
    password: str | None = None,
) -> Added:
    """Create an account (see the module docstring). With ``password`` the password is set at
    once and no link is made (scripts); raises AccountError naming the bad field."""
    email = normal_email(email)
    if role not in ROLES:
        raise AccountError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100:
        raise AccountError("name: must be 1-100 characters")
    if not team.strip() or len(team) > 64:
        raise AccountError("team: must be 1-64 characters")
    if session.scalar(select(Staff.id).where(Staff.email == email)) is not None:
        raise AccountError(f"email: {email} already has an account")
    staff = Staff(email=email, name=name.strip(), role=role, team=team.strip(), active=True, created_at=now)
    if needs_totp(staff, nurses_need_totp):
        staff.totp_secret = passwords.new_totp_secret()
    token = None
    if password is not None:
        try:
            staff.password_hash = passwords.hash_password(password)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
    session.add(staff)
    session.flush()
    if password is None:
        token = _setup_token(staff, secret_key, now)
    audit.record(
        session, at=now, actor=actor, action="staff.added", subject=f"staff:{staff.id}", role=role, team=team
    )
    return Added(staff.id, email, token)


def _setup_token(staff: Staff, secret_key: str, now: datetime) -> str:
    nonce = secrets.token_urlsafe(16)
    staff.setup_nonce = hashlib.sha256(nonce.encode()).hexdigest()
    return tokens.make_token(secret_key, SETUP_SALT, {"s": staff.id, "n": nonce}, now=now)


def new_setup_link(session: Session, email: str, *, secret_key: str, now: datetime, actor: str) -> str:
    """A fresh one-time set-password token for ``email`` (a forgotten password); the previous
    link stops working."""
    staff = find(session, email)
    token = _setup_token(staff, secret_key, now)
    audit.record(session, at=now, actor=actor, action="staff.reset_link", subject=f"staff:{staff.id}")
    return token


def staff_for_setup(session: Session, token: str, *, secret_key: str, now: datetime) -> Staff | None:
    """The active account a set-password token is for, or None (forged, expired, used)."""
    try:
        payload = tokens.read_token(secret_key, SETUP_SALT, token, SETUP_MAX_AGE, now=now.timestamp())
    except tokens.InvalidToken:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), int):
        return None
    staff = session.get(Staff, payload["s"])
    nonce = payload.get("n")
    if staff is None or not staff.active or not isinstance(nonce, str) or staff.setup_nonce is None:
        return None
    if not secrets.compare_digest(staff.setup_nonce, hashlib.sha256(nonce.encode()).hexdigest()):
        return None
    return staff


def set_password(session: Session, staff: Staff, password: str, *, now: datetime) -> None:
    """Set the password and spend the setup link; every other session is signed out."""
    staff.password_hash = passwords.hash_password(password)  # ValueError names the problem
    staff.setup_nonce = None
    revoke_sessions(session, staff.id, now)
    audit.record(session, at=now, actor=staff.email, action="staff.password_set", subject=f"staff:{staff.id}")


def find(session: Session, email: str) -> Staff:
    staff = session.scalar(select(Staff).where(Staff.email == normal_email(email)))
    if staff is None:
        raise AccountError(f"email: no account for {email.strip().lower()}")
    return staff


def disable(session: Session, email: str, *, now: datetime, actor: str) -> int:
    """Disable the account and revoke its sessions; returns how many were revoked."""
    staff = find(session, email)
    staff.active, staff.disabled_at, staff.setup_nonce = False, now, None
    revoked = revoke_sessions(session, staff.id, now)
    audit.record(
        session, at=now, actor=actor, action="staff.disabled", subject=f"staff:{staff.id}", sessions=revoked
    )
    return revoked


def revoke_sessions(session: Session, staff_id: int, now: datetime) -> int:
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def all_staff(session: Session) -> list[Staff]:
    return list(session.scalars(select(Staff).order_by(Staff.team, Staff.email)))
