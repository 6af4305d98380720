"""The webhook's TwiML is what twilio's own builder writes, for any reply text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twilio.twiml.messaging_response import MessagingResponse

from checkin.app.web.twilio import TWIML, twiml


def built_by_twilio(text: str | None) -> str:
    resp = MessagingResponse()
    if text:
        resp.message(text)
    return str(resp)


# Surrogates cannot be encoded as UTF-8 by either side; XML-illegal control characters are
# passed through by both alike, so they are included.
TEXTS = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=400)


@given(TEXTS)
def test_it_writes_what_messaging_response_writes(text: str) -> None:
    response = twiml(text)
    assert response.body.decode("utf-8") == built_by_twilio(text)
    assert response.media_type == TWIML


def test_markup_in_a_reply_is_escaped_and_no_reply_is_an_empty_response() -> None:
    body = twiml('Call <911> & say "back pain" ]]>').body.decode()
    assert '<Message>Call &lt;911&gt; &amp; say "back pain" ]]&gt;</Message>' in body
    assert twiml(None).body.decode() == built_by_twilio(None) == twiml("").body.decode()
