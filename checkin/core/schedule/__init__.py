"""Schedule files: typed models (``model``) and the validating loader (``load``)."""

from checkin.core.schedule.model import (
    CHANNEL_PREFERENCES,
    KNOWN_ATTRIBUTES,
    LANGUAGES,
    QUESTIONS,
    Condition,
    Enrollment,
    PlannedMessage,
    Schedule,
    Step,
)

__all__ = [
    "CHANNEL_PREFERENCES",
    "KNOWN_ATTRIBUTES",
    "LANGUAGES",
    "QUESTIONS",
    "Condition",
    "Enrollment",
    "PlannedMessage",
    "Schedule",
    "Step",
]
