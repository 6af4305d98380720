"""The FHIR settings (``CHECKIN_FHIR_*``), read by ``checkin.config`` and kept apart from it.

The private key may be given as a PEM or as a file (``CHECKIN_FHIR_PRIVATE_KEY_FILE``): only
``checkin fhir export`` needs it, and only its systemd unit is handed the credential, so the
file is read when the exporter starts (``FhirSettings.key``), not by every process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from checkin.errors import ConfigError

KEY = "CHECKIN_FHIR_PRIVATE_KEY"
_NEEDS = ("CHECKIN_FHIR_TOKEN_URL", "CHECKIN_FHIR_CLIENT_ID")


@dataclass(frozen=True)
class FhirSettings:
    base_url: str
    token_url: str
    client_id: str
    mrn_system: str
    private_key: str = field(default="", repr=False)  # the PEM, when given inline
    private_key_file: str | None = None

    def key(self) -> str:
        """The PEM private key; raises ConfigError when the file cannot be read or holds no key."""
        pem = self.private_key
        if self.private_key_file:
            try:
                pem = Path(self.private_key_file).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ConfigError(f"{KEY}_FILE", f"cannot read {self.private_key_file}: {e.strerror}") from e
        if "PRIVATE KEY" not in pem:
            raise ConfigError(KEY, "is not a PEM private key")
        return pem


def fhir_settings(
    env: Mapping[str, str],
    *,
    http_url: Callable[[Mapping[str, str], str], str | None],
    get: Callable[[Mapping[str, str], str], str],
) -> FhirSettings | None:
    """None unless CHECKIN_FHIR_BASE_URL is set; then every other FHIR setting is required."""
    base = http_url(env, "CHECKIN_FHIR_BASE_URL")
    if base is None:
        return None
    found = {n: (http_url(env, n) if n.endswith("URL") else get(env, n)) or "" for n in _NEEDS}
    key_file = env.get(f"{KEY}_FILE") or None
    inline = env.get(KEY) or ""
    for name, value in [*found.items(), (KEY, key_file or inline)]:
        if not value:
            raise ConfigError(name, "is required when CHECKIN_FHIR_BASE_URL is set")
    if key_file is None and "PRIVATE KEY" not in inline:
        raise ConfigError(KEY, "is not a PEM private key")
    return FhirSettings(
        base_url=base,
        token_url=found["CHECKIN_FHIR_TOKEN_URL"],
        client_id=found["CHECKIN_FHIR_CLIENT_ID"],
        mrn_system=get(env, "CHECKIN_FHIR_MRN_SYSTEM"),
        private_key="" if key_file else inline,
        private_key_file=key_file,
    )


def read_token(token: str | None) -> str | None:
    """CHECKIN_FHIR_READ_TOKEN: a random secret, long enough not to be guessed."""
    if token is not None and len(token) < 32:
        raise ConfigError("CHECKIN_FHIR_READ_TOKEN", "must be at least 32 characters (a random secret)")
    return token
