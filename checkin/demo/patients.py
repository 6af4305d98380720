"""Synthetic patients for the demo and how they answer. Pure: choices come from a seeded RNG.

Most answers are fine, some are watch-level, and a few scripted ones are the reason the
product exists: one urgent reply, one emergency, one patient who stops answering.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    mrn: str
    first_name: str
    phone: str
    procedure: str
    language: str = "en"
    smoker: bool = False
    attributes: tuple[str, ...] = ()
    email: str | None = None
    channel: str = "sms"
    answer_rate: float = 0.9
    # (day, ask, text): the answer to the first `ask` check-in on or after that day
    scripted: tuple[tuple[int, str, str], ...] = ()
    silent_after: int | None = None  # stops answering from this day on (missed check-ins)


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "DEMO-1001",
        "Ana",
        "+16175550101",
        "lumbar-fusion",
        smoker=True,
        attributes=("brace",),
        scripted=(
            (3, "pain_scale", "about a 6 today"),
            (12, "symptom_check", "8/10 and the pills aren't touching it"),
        ),
    ),
    Persona(
        "DEMO-1002",
        "María",
        "+16175550102",
        "lumbar-fusion",
        language="es",
        scripted=((5, "symptom_check", "tengo fiebre de 38.9 y escalofríos"),),
    ),
    Persona(
        "DEMO-1003",
        "James",
        "+16175550103",
        "cervical-fusion",
        attributes=("collar",),
        scripted=((9, "", "chest pain and I can't catch my breath"),),
    ),
    Persona(
        "DEMO-1004",
        "Grace",
        "+16175550104",
        "cervical-fusion",
        email="grace@example.org",
        channel="both",
        scripted=((2, "symptom_check", "a little sore when I swallow, better than yesterday"),),
    ),
    Persona("DEMO-1005", "Omar", "+16175550105", "lumbar-fusion", silent_after=6),
)

_FINE: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "symptom_check": ("no", "NO all fine", "no, wound looks clean and dry"),
        "function_scale": ("3", "2", "4"),
        "fever_check": ("no", "No fever, 98.4", "nope, temp normal"),
        "wound_check": ("no", "looks clean and dry", "No redness or drainage"),
        "pain_scale": ("3", "4", "2", "pain is a 3"),
        "mood_check": ("doing ok", "good today", "fine thanks"),
        "swallow_check": ("no", "swallowing fine"),
        "numbness_check": ("no", "no new numbness"),
        "weakness_check": ("no", "legs feel strong"),
        "bladder_check": ("no", "all normal"),
        "breathing_check": ("no", "breathing fine"),
        "fall_check": ("no", "no falls"),
    },
    "es": {
        "symptom_check": ("no", "todo bien", "no, la herida está limpia y seca"),
        "function_scale": ("3", "2"),
        "fever_check": ("no", "No tengo fiebre", "sin fiebre, 36.8"),
        "wound_check": ("no", "la herida está limpia y seca"),
        "pain_scale": ("3", "4", "dolor 2"),
        "mood_check": ("bien", "estoy bien, gracias"),
        "swallow_check": ("no", "trago bien"),
        "numbness_check": ("no",),
        "weakness_check": ("no",),
        "bladder_check": ("no", "todo normal"),
        "breathing_check": ("no",),
        "fall_check": ("no",),
    },
}
# Watch-level answers, by question: worth a nurse's look in the digest, not an alert.
_WATCH = {
    "en": {
        "pain_scale": ("5", "pain is a 6"),
        "mood_check": ("feeling a bit down today",),
        "fever_check": ("100.6 this morning",),
        "wound_check": ("no, but I'm constipated",),
        "symptom_check": ("no, but I'm constipated", "100.6 this morning"),
    },
    "es": {
        "pain_scale": ("6", "dolor 5"),
        "mood_check": ("me siento un poco triste",),
        "fever_check": ("37.9",),
        "wound_check": ("no, pero estoy estreñida",),
        "symptom_check": ("no, pero estoy estreñida",),
    },
}


def reply_for(persona: Persona, ask: str, day: int, rng: random.Random, used: set[int]) -> str | None:
    """What ``persona`` texts back to a check-in ``ask`` on ``day``, or None for no answer.
    ``used`` holds the indexes of scripted answers already given (updated here)."""
    if persona.silent_after is not None and day >= persona.silent_after:
        return None
    for i, (on, want, text) in enumerate(persona.scripted):
        if i not in used and day >= on and (not want or want == ask):
            used.add(i)
            return text
    if rng.random() > persona.answer_rate:
        return None
    watch = _WATCH[persona.language].get(ask)
    if watch and rng.random() < 0.1:
        return rng.choice(watch)
    options = _FINE[persona.language].get(ask, ("ok",))
    return rng.choice(options)
