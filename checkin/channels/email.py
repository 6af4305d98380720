"""Email through an SMTP relay (the hospital's, usually) with ``smtplib``.

One connection per message: connect, EHLO, STARTTLS (or implicit TLS), AUTH when a user is
configured, MAIL, RCPT, DATA, QUIT. The conversation is driven step by step, not with
``send_message``, so a failure can be attributed to its phase:

==============================================  =========  =========  =====================
failure                                          permanent  ambiguous  code
==============================================  =========  =========  =====================
connect refused / unreachable / timeout, TLS     no         no         --
errors, ``SMTPConnectError``, disconnect before
DATA
greeting, EHLO, STARTTLS, AUTH or MAIL FROM      no         no         the SMTP code
refused (any code: the relay or our own
configuration is wrong, not this message;
retrying after an operator fixes it works)
RCPT TO or DATA answered 4xx                     no         no         the SMTP code
RCPT TO or DATA answered 5xx                     yes        no         the SMTP code
connection lost or timed out *during* DATA       no         yes        --
==============================================  =========  =========  =====================

"A failure after DATA was accepted cannot happen silently": once the relay answers 250 to the
end of DATA the message is its responsibility and ``send`` returns a ``Receipt`` even if QUIT
then fails. If the connection dies while DATA is in flight we cannot know whether the relay
queued it, so the error is ``ambiguous``; the message carries our own ``Message-ID`` (also the
receipt's ``provider_id``), fixed per outbox row, so a resend is recognisably the same message.

Nothing logged here contains the address, subject or body: logs name the outbox id and
``message.reference``.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from typing import Literal

from checkin.channels.base import OutgoingMessage, Receipt
from checkin.errors import ChannelError, ConfigError, Refusal
from checkin.states import ChannelName

log = logging.getLogger(__name__)

TlsMode = Literal["starttls", "ssl", "none"]
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
# Bodies are built 7-bit clean (quoted-printable/base64 for non-ASCII text) so any relay can
# take them without BODY=8BITMIME. Headers are written unfolded up to the RFC 5322 limit so
# the long Message-ID stays on one line and reads back exactly as the receipt has it.
_BUILD_POLICY = SMTP_POLICY.clone(cte_type="7bit")
_WIRE_POLICY = _BUILD_POLICY.clone(max_line_length=998)


@dataclass(frozen=True, kw_only=True)
class SmtpConfig:
    """How to reach the relay.

    ``tls``: ``starttls`` (plain connect, then STARTTLS; refuses to continue if the server does
    not offer it), ``ssl`` (implicit TLS, usually port 465) or ``none`` (loopback relays and
    tests only: a password is refused over ``none`` unless the host is loopback).
    ``ca_file`` adds a trust anchor (a hospital CA); certificates are always verified.
    ``timeout`` (seconds) bounds connecting and every reply.
    """

    host: str
    port: int
    sender: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsMode = "starttls"
    timeout: float = 30.0
    ca_file: str | None = None
    local_hostname: str | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("SmtpConfig.host", "is empty")
        if not 0 < self.port < 65536:
            raise ConfigError("SmtpConfig.port", f"must be 1-65535, not {self.port!r}")
        if self.tls not in ("starttls", "ssl", "none"):
            raise ConfigError("SmtpConfig.tls", f"must be starttls, ssl or none, not {self.tls!r}")
        if not self.timeout > 0:
            raise ConfigError("SmtpConfig.timeout", f"must be > 0, not {self.timeout!r}")
        if "@" not in self.sender or any(c in self.sender for c in "\r\n"):
            raise ConfigError("SmtpConfig.sender", "must be an email address")
        if bool(self.user) != bool(self.password):
            raise ConfigError("SmtpConfig.user", "user and password go together")
        if self.user and self.tls == "none" and self.host not in _LOOPBACK:
            raise ConfigError("SmtpConfig.tls", "refusing to send a password without TLS")


class SmtpEmailChannel:
    """Sends email through one SMTP relay. Thread-safe: each send opens its own connection."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._domain = config.sender.rpartition("@")[2].strip(">").strip() or "localhost"

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The ``EmailMessage`` that ``send`` would transmit (text, or text+html alternative).

        Raises ``ChannelError`` (permanent) when the message cannot be expressed as email:
        wrong channel, no subject, or a header value with a line break (header injection).
        """
        if message.channel != ChannelName.EMAIL:
            raise ChannelError(
                f"SmtpEmailChannel cannot send a {message.channel!r} message",
                permanent=True,
                code="wrong-channel",
            )
        if not message.subject:
            raise ChannelError("email needs a subject", permanent=True, code="no-subject")
        mail = EmailMessage(policy=_BUILD_POLICY)
        try:
            mail["From"] = self._config.sender
            mail["To"] = message.to
            mail["Subject"] = message.subject
            if message.reply_to:
                mail["Reply-To"] = message.reply_to
            mail["Date"] = formatdate(usegmt=True)
            mail["Message-ID"] = self.message_id(message)
            mail.set_content(message.text)
            if message.html is not None:
                mail.add_alternative(message.html, subtype="html")
        except (ValueError, TypeError, IndexError) as exc:
            # The email package refuses CR/LF in header values and unparsable addresses;
            # its message may quote the value, so it is not passed on.
            raise ChannelError(
                f"cannot build the email ({type(exc).__name__})", permanent=True, code="bad-message"
            ) from None
        addresses = mail["To"].addresses
        if len(addresses) != 1 or "@" not in addresses[0].addr_spec:
            raise ChannelError("email needs exactly one recipient", permanent=True, code="bad-message")
        return mail

    def message_id(self, message: OutgoingMessage) -> str:
        """The ``Message-ID`` for ``message``: the same for every send of one outbox row (a
        hash of its ``row_key``), so a resend after a connection lost during DATA can be
        deduplicated by mail systems; a fresh one when the message has no ``row_key``."""
        if message.row_key is None:
            return make_msgid(idstring=f"outbox-{message.outbox_id}", domain=self._domain)
        digest = hashlib.sha256(message.row_key.encode()).hexdigest()[:24]
        return f"<outbox-{message.outbox_id}.{digest}@{self._domain}>"

    def send(self, message: OutgoingMessage) -> Receipt:
        """Transmit once. Returns ``Receipt(provider_id=<our Message-ID>, status="accepted")``
        when the relay accepted the message; raises ``ChannelError`` as in the module table."""
        mail = self.build(message)
        message_id = str(mail["Message-ID"])
        phase = "connect"
        smtp: smtplib.SMTP | None = None
        try:
            smtp = self._connect()
            phase = "ehlo"
            smtp.ehlo()
            if self._config.tls == "starttls":
                phase = "starttls"
                if not smtp.has_extn("starttls"):
                    raise ChannelError(
                        "relay does not offer STARTTLS; not sending in clear",
                        permanent=False,
                        code="no-starttls",
                    )
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if self._config.user:
                phase = "auth"
                smtp.login(self._config.user, self._config.password or "")
            phase = "mail"
            sender = mail["From"].addresses[0].addr_spec
            recipient = mail["To"].addresses[0].addr_spec
            options = self._mail_options(smtp, sender, recipient)
            code, _ = smtp.mail(sender, options)
            _expect(code, (250,), phase)
            phase = "rcpt"
            code, _ = smtp.rcpt(recipient)
            _expect(code, (250, 251), phase)
            phase = "data"
            payload = mail.as_bytes(policy=_WIRE_POLICY.clone(utf8=bool(options)))
            code, _ = smtp.data(payload)
            _expect(code, (250,), phase)
            phase = "done"
        except ChannelError as exc:
            self._log_failure(message, phase, exc)
            raise
        except smtplib.SMTPResponseException as exc:
            error = _reply_error(exc.smtp_code, phase)
            self._log_failure(message, phase, error)
            raise error from None
        except (smtplib.SMTPException, OSError) as exc:
            # OSError covers refused/unreachable/timeout (socket.timeout is TimeoutError) and
            # ssl.SSLError; SMTPServerDisconnected is an SMTPException.
            ambiguous = phase == "data"
            error = ChannelError(
                f"SMTP {phase} failed ({type(exc).__name__})"
                + ("; the relay may have accepted the message" if ambiguous else ""),
                permanent=False,
                ambiguous=ambiguous,
            )
            self._log_failure(message, phase, error)
            raise error from None
        finally:
            if smtp is not None and phase != "done":
                smtp.close()
        assert smtp is not None  # phase "done" is only reached connected
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            # The relay already answered 250 to DATA: the message is its responsibility.
            smtp.close()
        log.info(
            "email accepted",
            extra={
                "event": "channel.accepted",
                "outbox_id": message.outbox_id,
                "patient_ref": message.reference,
                "provider_id": message_id,
            },
        )
        return Receipt(provider_id=message_id, status="accepted")

    def _connect(self) -> smtplib.SMTP:
        c = self._config
        if c.tls == "ssl":
            return smtplib.SMTP_SSL(
                c.host,
                c.port,
                local_hostname=c.local_hostname,
                timeout=c.timeout,
                context=self._tls_context(),
            )
        return smtplib.SMTP(c.host, c.port, local_hostname=c.local_hostname, timeout=c.timeout)

    def _tls_context(self) -> ssl.SSLContext:
        # Verifies the certificate and host name; ca_file adds a private CA to the defaults.
        return ssl.create_default_context(cafile=self._config.ca_file)

    @staticmethod
    def _mail_options(smtp: smtplib.SMTP, sender: str, recipient: str) -> list[str]:
        if (sender + recipient).isascii():
            return []
        if smtp.has_extn("smtputf8"):
            return ["SMTPUTF8", "BODY=8BITMIME"]
        raise ChannelError(
            "relay does not support SMTPUTF8 for a non-ASCII address", permanent=True, code="no-smtputf8"
        )

    @staticmethod
    def _log_failure(message: OutgoingMessage, phase: str, error: ChannelError) -> None:
        log.warning(
            "email failed",
            extra={
                "event": "channel.failed",
                "outbox_id": message.outbox_id,
                "patient_ref": message.reference,
                "phase": phase,
                "code": error.code,
                "refusal": error.refusal,
                "permanent": error.permanent,
                "ambiguous": error.ambiguous,
            },
        )


def _expect(code: int, ok: tuple[int, ...], phase: str) -> None:
    if code not in ok:
        raise _reply_error(code, phase)


def _reply_error(code: int, phase: str) -> ChannelError:
    """A negative SMTP reply. Only RCPT and DATA speak about this message; earlier phases
    speak about the relay or our configuration, so they stay transient."""
    about_message = phase in ("rcpt", "data")
    permanent = about_message and 500 <= code < 600
    # A 5xx to RCPT or DATA: this relay will not deliver to this recipient (unknown mailbox,
    # mailbox full or disabled, policy), which a nurse should hear of.
    refusal = Refusal.UNREACHABLE if permanent else Refusal.TRANSIENT
    if phase == "auth":
        refusal = Refusal.ACCOUNT_PROBLEM  # our login was refused: fix the settings, then it goes
    return ChannelError(
        f"SMTP {phase} refused with {code}", permanent=permanent, code=str(code), refusal=refusal
    )


__all__ = ["SmtpConfig", "SmtpEmailChannel", "TlsMode"]
