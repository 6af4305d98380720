"""Read a patient's email reply: who it answers, what they wrote, and whether to ignore it.

Pure: bytes in, a ``ParsedReply`` out; no database, no settings object, no clock.

- **What it answers**: the reply token from the plus-address it was sent to
  (``checkin+<token>@example.org``, see ``checkin.tokens.reply_address``), taken from the SMTP
  envelope first, then ``Delivered-To``/``To``/``Cc``; and the Message-IDs it says it replies to
  (``In-Reply-To``, then ``References`` newest first) as a second way to find our message.
- **What they wrote**: the text/plain part (else the HTML part as text, blockquotes dropped),
  with the quoted history cut off: "On … wrote:" (English clients), "El … escribió:" (Spanish
  ones), Outlook's "From:/Sent:/To:/Subject:" block (and De:/Enviado:/Para:/Asunto:), "-----
  Original Message -----", ``>`` lines, a "-- " signature and "Sent from my iPhone". An answer
  written *below* the quote (inline replies) is kept: only when the text above the quote is
  empty, the quote header and ``>`` lines are dropped and the rest is the answer.
- **Whether to ignore it**: automatic mail (``Auto-Submitted`` other than ``no``, vacation
  notices, bulk/list precedence, bounces) gets no triage and no answer (RFC 3834), so two
  auto-responders cannot ping-pong through a clinical service.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses
from html.parser import HTMLParser

_QUOTE_HEADERS = (
    re.compile(r"^\s*On\b.{0,400}\bwrote:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*El\b.{0,400}\bescribi[oó]:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*-{2,}\s*(Original Message|Mensaje original|Forwarded message)\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*_{20,}\s*$"),  # Outlook's rule above its header block
)
_OUTLOOK_FIRST = re.compile(r"^\s*\*?(From|De)\s*:\*?\s", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\s*\*?(Sent|Date|To|Cc|Subject|Enviado|Fecha|Para|Asunto)\s*:\*?\s", re.IGNORECASE
)
_SIGNOFFS = re.compile(
    r"^\s*(Sent from my \w+|Get Outlook for \w+|Enviado desde mi \w+|Obtener Outlook para \w+)\b.*$",
    re.IGNORECASE,
)
_MSGID = re.compile(r"<[^<>\s]+>")
_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?reply|respuesta autom[aá]tica|"
    r"fuera de la oficina|undeliverable|delivery status notification)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedReply:
    dedupe_key: str  # "email:<sha256 of Message-ID>" (or of the raw bytes when it has none)
    sender: str | None  # the From address (may be forged: never trusted to identify a patient)
    subject: str
    text: str  # what the patient wrote, quoted history removed
    tokens: tuple[str, ...]  # plus-address details sent to our reply address
    replied_to: tuple[str, ...]  # Message-IDs, In-Reply-To first, then References newest first
    automatic: str | None  # why it is automatic mail (then it is not processed), or None
    attachments: int = 0  # files attached (a photo of the wound, say): counted, never stored

    def __repr__(self) -> str:  # no address, no text: this object may end up in a traceback
        return f"ParsedReply(dedupe_key={self.dedupe_key!r}, tokens={len(self.tokens)})"


def parse_reply(raw: bytes, *, envelope_to: tuple[str, ...] = (), reply_base: str | None) -> ParsedReply:
    """Parse ``raw`` (RFC 5322 bytes). ``reply_base`` is CHECKIN_EMAIL_REPLY_TO; tokens are the
    ``+detail`` of recipients whose base address equals it (case-insensitive)."""
    msg = message_from_bytes(raw, policy=policy.default)
    message_id = _header(msg, "Message-ID")
    key_source = message_id.encode() if message_id else raw
    recipients = [*envelope_to]
    for name in ("Delivered-To", "X-Original-To", "To", "Cc"):
        recipients.extend(addr for _, addr in getaddresses([_header(msg, name)]) if addr)
    replied = _MSGID.findall(_header(msg, "In-Reply-To"))
    replied += list(reversed(_MSGID.findall(_header(msg, "References"))))
    senders = [addr for _, addr in getaddresses([_header(msg, "From")]) if addr]
    return ParsedReply(
        dedupe_key="email:" + hashlib.sha256(key_source).hexdigest()[:56],
        sender=senders[0] if len(senders) == 1 else None,
        subject=_header(msg, "Subject").replace("\r", " ").replace("\n", " ")[:200],
        text=strip_quoted(body_text(msg)),
        tokens=tuple(dict.fromkeys(t for t in (plus_detail(r, reply_base) for r in recipients) if t)),
        replied_to=tuple(dict.fromkeys(replied)),
        automatic=_automatic(msg, senders),
        attachments=sum(1 for _ in msg.iter_attachments()) if isinstance(msg, EmailMessage) else 0,
    )


def plus_detail(address: str, base: str | None) -> str | None:
    """``token`` when ``address`` is ``local+token@domain`` and ``base`` is ``local@domain``."""
    if not base:
        return None
    local, _, domain = address.strip().strip("<>").rpartition("@")
    base_local, _, base_domain = base.rpartition("@")
    head, plus, detail = local.partition("+")
    if not plus or head.lower() != base_local.lower() or domain.lower() != base_domain.lower():
        return None
    return detail or None


def is_reply_address(address: str, base: str | None) -> bool:
    """``address`` is ``base`` itself or one of its plus-addresses (case-insensitive)."""
    if not base:
        return False
    bare = address.strip().strip("<>")
    return bare.lower() == base.lower() or plus_detail(bare, base) is not None


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError):  # a malformed header the parser cannot model
        return ""
    return "" if value is None else str(value).strip()


def _automatic(msg: Message, senders: list[str]) -> str | None:
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto[:40]}"
    if _header(msg, "Precedence").lower() in ("bulk", "junk", "list"):
        return "Precedence"
    if any(_header(msg, h) for h in ("X-Autoreply", "X-Autorespond", "List-Id")):
        return "auto-reply header"
    if msg.get_content_type() == "multipart/report":
        return "delivery report"
    if not senders or senders[0].lower().split("@")[0] in ("mailer-daemon", "postmaster"):
        return "no sender" if not senders else "bounce"
    if _AUTO_SUBJECT.match(_header(msg, "Subject")):
        return "auto-reply subject"
    return None


def body_text(msg: Message) -> str:
    """The text/plain body, else the HTML body as text; "" when there is neither."""
    if not isinstance(msg, EmailMessage):
        return ""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or lying charset: keep what decodes
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    return html_to_text(content) if part.get_content_type() == "text/html" else content


class _Text(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.quote_depth = 0
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = " ".join(v or "" for k, v in attrs if k == "class")
        if tag == "blockquote" or "gmail_quote" in classes or tag in ("style", "script", "head"):
            self.skip_depth += 1 if tag in ("blockquote", "style", "script", "head") else 0
            if "gmail_quote" in classes and tag != "blockquote":
                self.out.append("\n\x00QUOTE\n")  # a cut mark, read by strip_quoted
        if tag in self._BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("blockquote", "style", "script", "head") and self.skip_depth:
            self.skip_depth -= 1
        if tag in self._BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.out.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "".join(parser.out)


def strip_quoted(text: str) -> str:
    """What the patient wrote in ``text``, without the history their client quoted."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = _quote_start(lines)
    if cut is not None:
        above = _clean(lines[:cut])
        if above:
            return above
        # Nothing above the quote: an inline answer below it, between quoted lines.
        lines = lines[cut + _header_length(lines, cut) :]
    return _clean(line for line in lines if not line.lstrip().startswith(">"))


def _quote_start(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        if line == "\x00QUOTE":
            return i
        joined = line if i + 1 >= len(lines) else line + " " + lines[i + 1]
        if any(p.match(line) for p in _QUOTE_HEADERS) or (
            # "On Tue, Mar 3, 2026 at 10:00 AM Spine Center <\ncheckin@example.org> wrote:"
            line.strip()[:3].lower() in ("on ", "el ") and any(p.match(joined) for p in _QUOTE_HEADERS[:2])
        ):
            return i
        if (
            _OUTLOOK_FIRST.match(line)
            and sum(bool(_OUTLOOK_NEXT.match(x)) for x in lines[i + 1 : i + 5]) >= 2
        ):
            return i
    return None


def _header_length(lines: list[str], start: int) -> int:
    """How many lines the quote header at ``start`` spans (1, 2 when wrapped, or Outlook's block)."""
    if lines[start] == "\x00QUOTE":
        return 1
    if _OUTLOOK_FIRST.match(lines[start]):
        n = 1
        while start + n < len(lines) and _OUTLOOK_NEXT.match(lines[start + n]):
            n += 1
        return n
    if not any(p.match(lines[start]) for p in _QUOTE_HEADERS) and start + 1 < len(lines):
        return 2
    return 1


def _clean(lines: Iterable[str]) -> str:
    kept: list[str] = []
    for line in lines:
        if line.rstrip() == "--":  # "-- " opens a signature (RFC 3676); clients trim the space
            break
        if _SIGNOFFS.match(line):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


__all__ = [
    "ParsedReply",
    "body_text",
    "html_to_text",
    "is_reply_address",
    "parse_reply",
    "plus_detail",
    "strip_quoted",
]
