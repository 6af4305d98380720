"""Schedule files: typed models (``model``) and the validating loader (``load``)."""

from checkin.core.languages import LANGUAGES
from checkin.core.schedule.model import (
    CHANNEL_PREFERENCES,
    KNOWN_ATTRIBUTES,
    QUESTIONS,
    ChannelName,
    Condition,
    PlanInput,
    PlannedMessage,
    Schedule,
    Step,
)

__all__ = [
    "CHANNEL_PREFERENCES",
    "KNOWN_ATTRIBUTES",
    "LANGUAGES",
    "QUESTIONS",
    "ChannelName",
    "Condition",
    "PlanInput",
    "PlannedMessage",
    "Schedule",
    "Step",
]
