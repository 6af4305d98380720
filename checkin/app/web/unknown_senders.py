"""At most one reply a day to a number checkin does not know, emergencies excepted.

Every text from an unknown number used to get an SMS back: two auto-responders (or a spammer's
list) kept each other busy at the clinic's cost. The first message from a number that matches no
patient is answered as before; later ones within ``WINDOW`` are stored, triaged and audited but
not answered, unless the text reads as an emergency, which always gets the safety reply.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from checkin.deps import Services
from checkin.inbound.message import InboundResult
from checkin.store import audit
from checkin.store.models import InboundMessage

WINDOW = timedelta(days=1)


def may_withhold(result: InboundResult, from_phone: str | None) -> bool:
    """Whether ``stay_quiet`` could withhold ``result``'s reply at all (no database needed):
    only a reply to a number that matched no patient, and never an emergency's."""
    return (
        result.matched == "unknown"
        and result.severity != "emergency"
        and result.reply_text is not None
        and result.inbound_id is not None
        and bool(from_phone)
    )


def stay_quiet(services: Services, result: InboundResult, from_phone: str | None, now: datetime) -> bool:
    """Whether to withhold ``result``'s reply (and audit that it was withheld)."""
    if not may_withhold(result, from_phone):
        return False
    with services.sessions.begin() as session:
        earlier = session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(
                InboundMessage.from_phone == from_phone,
                InboundMessage.patient_id.is_(None),
                InboundMessage.received_at >= now - WINDOW,
                InboundMessage.id < result.inbound_id,
            )
        )
        if not earlier:
            return False
        audit.record(
            session,
            at=now,
            actor="system",
            action="reply.withheld",
            subject=f"inbound:{result.inbound_id}",
            reason="unknown sender, already answered today",
        )
    return True
