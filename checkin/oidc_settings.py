"""The single sign-on settings (``CHECKIN_OIDC_*``), read by ``checkin.config`` and kept apart
from it: all three, or none (an issuer or client id without the rest fails closed). The
secret's file is read only when single sign-on is wanted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from checkin.errors import ConfigError


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)


def oidc_settings(
    env: Mapping[str, str],
    *,
    http_url: Callable[[Mapping[str, str], str], str | None],
    get: Callable[[Mapping[str, str], str], str],
    secret: Callable[[Mapping[str, str], str], str | None],
) -> OidcSettings | None:
    issuer = http_url(env, "CHECKIN_OIDC_ISSUER")
    client_id = get(env, "CHECKIN_OIDC_CLIENT_ID")
    if issuer is None and not client_id:
        return None
    client_secret = secret(env, "CHECKIN_OIDC_CLIENT_SECRET") or ""
    for name, value in (
        ("CHECKIN_OIDC_ISSUER", issuer),
        ("CHECKIN_OIDC_CLIENT_ID", client_id),
        ("CHECKIN_OIDC_CLIENT_SECRET", client_secret),
    ):
        if not value:
            raise ConfigError(name, "is required when any CHECKIN_OIDC_* setting is set")
    assert issuer is not None
    return OidcSettings(issuer=issuer, client_id=client_id, client_secret=client_secret)
