"""Emails invite a reply only when replies are read (CHECKIN_EMAIL_REPLY_TO is set)."""

from __future__ import annotations

import re

import pytest

from checkin.content.render import Renderer, sample_context
from tests.support import ROOT

INVITES = re.compile(
    r"reply to this email|just reply|responder a este correo|solo responda|\breply (yes|no|0-10)\b",
    re.IGNORECASE,
)


def email_messages(language: str) -> list[str]:
    return sorted(
        p.name.removesuffix(".txt.j2") for p in (ROOT / "templates/email" / language).glob("*.txt.j2")
    )


@pytest.mark.parametrize("language", ["en", "es"])
def test_no_email_invites_a_reply_while_replies_are_not_read(language: str) -> None:
    renderer = Renderer(ROOT / "templates")
    context = {**sample_context(language), "email_replies": False}
    inviting = []
    for message in email_messages(language):
        mail = renderer.render_email(message, language, context)
        if INVITES.search(mail.text) or INVITES.search(mail.html):
            inviting.append(message)
    assert email_messages(language), "no email templates found"
    assert inviting == []


@pytest.mark.parametrize("language", ["en", "es"])
def test_check_in_emails_offer_replying_once_replies_are_read(language: str) -> None:
    renderer = Renderer(ROOT / "templates")
    context = {**sample_context(language), "email_replies": True}
    mail = renderer.render_email("wound_check", language, context)
    assert INVITES.search(mail.text) and INVITES.search(mail.html)
