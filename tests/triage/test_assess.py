"""Behaviour of checkin.core.triage.assess, one behaviour per test, tables as parametrize."""

from __future__ import annotations

import json

import pytest

from checkin.core.triage import Assessment, Flag, Severity, assess

E, U, W, N = "emergency", "urgent", "watch", "none"


def flags_of(a: Assessment) -> set[str]:
    return {f.value for f in a.flags}


def check(text: str, context: str | None, flags: set[str], severity: str) -> Assessment:
    a = assess(text, context)
    assert (flags_of(a), a.severity.value) == (flags, severity), a.to_dict()
    return a


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("no fever", None, set(), N),
        ("denies numbness", None, set(), N),
        ("not leaking", "wound_check", set(), N),
        ("nothing coming out", "wound_check", set(), N),
        ("no pus, no smell, no redness", "wound_check", set(), N),
        ("denies fever chills numbness tingling", None, set(), N),
        ("I don't have a fever or chills", None, set(), N),
        ("no tengo fiebre", "fever_check", set(), N),
        ("sin fiebre", None, set(), N),
        ("no me he caído", "fall_check", set(), N),
        ("no chest pain", None, set(), N),
    ],
)
def test_it_honours_negation(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("no fever but my incision is leaking", None, {"wound_drainage"}, U),
        ("no fever, incision leaking", None, {"wound_drainage"}, U),
        ("no fever and my incision is leaking", None, {"wound_drainage"}, U),
        ("no tengo fiebre pero la herida supura", None, {"wound_drainage"}, U),
        ("no fever but pain is 9", None, {"severe_pain"}, U),
        ("no numbness, can't pee", None, {"bowel_bladder"}, E),
    ],
)
def test_it_ends_negation_scope_at_clause_boundaries(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("can't pee", None, {"bowel_bladder"}, E),
        ("cant pee", "bladder_check", {"bowel_bladder"}, E),
        ("my husband can't pee", None, {"bowel_bladder"}, E),
        ("I don't feel when I need to go", "bladder_check", {"bowel_bladder"}, E),
        ("I don't want to live anymore", None, {"self_harm"}, E),
        ("no reason to live", None, {"self_harm"}, E),
        ("denies fever chills numbness, chest pain", None, {"chest_breathing"}, E),
        ("not sure but I can't breathe", None, {"chest_breathing"}, E),
        ("maybe chest pain?", None, {"chest_breathing"}, E),
    ],
)
def test_it_does_not_let_loose_negation_or_hedges_hide_an_emergency(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("numbness is gone", "numbness_check", set(), N),
        ("fever gone", None, set(), N),
        ("redness is gone", "wound_check", set(), N),
        ("no more pins and needles", "numbness_check", set(), N),
        ("ya no tengo fiebre", "fever_check", set(), N),
        ("I had chills last night, gone now", None, set(), N),
        ("numbness is better", "numbness_check", set(), W),
        ("drainage is less than yesterday", "wound_check", set(), W),
    ],
)
def test_it_recognises_resolution_and_improvement(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("same numbness as before surgery", "numbness_check", set(), N),
        ("my left hand is still numb like it was", "numbness_check", set(), N),
        ("tengo el mismo entumecimiento que antes de la cirugía", None, set(), N),
        ("worse numbness", None, {"new_numbness"}, U),
        ("numbness isn't new, but it's spreading up my leg", None, {"new_numbness"}, U),
        ("difficulty swallowing is no better than last week", "swallow_check", set(), W),
        ("my foot is numb", None, {"new_numbness"}, U),
    ],
)
def test_it_separates_chronic_from_new(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("text", "context", "temp", "severity"),
    [
        ("101.5", "fever_check", 101.5, U),
        ("38.6C", None, 101.5, U),
        ("102 F", None, 102.0, U),
        ("temp 38,5", None, 101.3, U),
        ("100.6", "fever_check", 100.6, W),
        ("100.2", "fever_check", 100.2, N),
        ("37,8", "fever_check", 100.0, N),
        ("hundred and two last night", "fever_check", 102.0, U),
        ("fever of 101 on Tuesday, normal since", "fever_check", 101.0, W),
        ("Y, 101.2 at 6pm", "fever_check", 101.2, U),
    ],
)
def test_it_reads_temperatures_with_and_without_units(text, context, temp, severity) -> None:
    a = assess(text, context)
    assert (a.temperature_f, a.severity.value) == (temp, severity), a.to_dict()


@pytest.mark.parametrize(
    ("text", "context", "score", "severity"),
    [
        ("pain 9/10", None, 9, U),
        ("pain is a 9", None, 9, U),
        ("9 out of 10", None, 9, U),
        ("8 de 10", None, 8, U),
        ("nine out of ten", None, 9, U),
        ("8", "pain_scale", 8, U),
        ("7", "pain_scale", 7, W),
        ("3.5", "pain_scale", 3, N),
        ("7-8", "pain_scale", 7, W),
        ("lifted 8 lbs and now pain is 6", "pain_scale", 6, W),
        ("5 on the left 8 on the right", "pain_scale", 8, U),
    ],
)
def test_it_reads_pain_scores(text, context, score, severity) -> None:
    a = assess(text, context)
    assert (a.pain_score, a.severity.value) == (score, severity), a.to_dict()


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("8", None, set(), N),  # a bare number means nothing without a question
        ("101", None, set(), N),
        ("101", "fever_check", {"fever"}, U),
        ("7", "fever_check", set(), N),
        ("thanks", "made_up_context", set(), N),
        ("yes", "pain_reminder", set(), N),
    ],
)
def test_it_reads_bare_numbers_by_context(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("context", "flags", "severity"),
    [
        ("fever_check", {"fever"}, U),
        ("wound_check", {"wound_drainage", "wound_redness"}, U),
        ("numbness_check", {"new_numbness"}, U),
        ("weakness_check", {"new_weakness"}, U),
        ("bladder_check", {"bowel_bladder"}, E),
        ("breathing_check", {"chest_breathing"}, E),
        ("swallow_check", {"swallowing"}, U),
        ("fall_check", {"fall"}, U),
        ("mood_check", set(), W),
        ("reminder", set(), N),
        ("general", set(), N),
        (None, set(), N),
    ],
)
def test_it_reads_a_bare_yes_as_the_symptom_asked_about(context, flags, severity) -> None:
    check("yes", context, flags, severity)


@pytest.mark.parametrize("text", ["no", "No.", "nope", "nah", "NO", "negative"])
@pytest.mark.parametrize(
    "context", ["fever_check", "bladder_check", "breathing_check", "fall_check", "mood_check", "wound_check"]
)
def test_it_reads_a_bare_no_as_nothing(text, context) -> None:
    check(text, context, set(), N)


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("feaver and chills", None, {"fever"}, U),
        ("numbnes in my leg", None, {"new_numbness"}, U),
        ("drainige on the bandage", "wound_check", {"wound_drainage"}, U),
        ("incison leakin thru the bandaid", None, {"wound_drainage"}, U),
        ("swolen calf on my rite leg", None, {"calf_clot"}, U),
        ("it was smelling fine, nothing else", None, set(), N),
        ("leaning on my walker", None, set(), N),
        ("drinking lots of water", None, set(), N),
        ("allowing myself a nap after bathing", None, set(), N),
        ("don't overdo it, the decompression healed", None, set(), N),
        ("se está superando poco a poco", None, set(), N),
    ],
)
def test_it_corrects_misspellings_without_colliding_real_words(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("🤒", "fever_check", {"fever"}, U),
        ("🩸 through the gauze", "wound_check", {"wound_drainage"}, U),
        ("😭", None, set(), N),
        ("👍", None, set(), N),
        ("quit smoking day 30 🎉", "reminder", set(), N),
    ],
)
def test_it_reads_emoji(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("tengo fiebre", "fever_check", {"fever"}, U),
        ("tengo escalofríos", None, {"fever"}, U),
        ("la herida supura", None, {"wound_drainage"}, U),
        ("la herida está enrojecida e hinchada", None, {"wound_redness"}, U),
        ("entumecimiento nuevo en la pierna", None, {"new_numbness"}, U),
        ("debilidad en la pierna", None, {"new_weakness"}, U),
        ("no puedo orinar", None, {"bowel_bladder"}, E),
        ("no controlo la vejiga", None, {"bowel_bladder"}, E),
        ("dolor de pecho y falta de aire", None, {"chest_breathing"}, E),
        ("me caí", None, {"fall"}, U),
        ("me cuesta tragar", "swallow_check", {"swallowing"}, U),
        ("quiero morirme", None, {"self_harm"}, E),
        ("orino bien, gracias", "bladder_check", set(), N),
    ],
)
def test_it_understands_spanish(text, context, flags, severity) -> None:
    a = check(text, context, flags, severity)
    assert a.language == "es"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("I have a fever", "en"),
        ("tengo fiebre", "es"),
        ("AYUDA", "es"),
        ("ok", "en"),
        ("👍", "en"),
    ],
)
def test_it_detects_the_language(text, language) -> None:
    assert assess(text).language == language


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("my husband can't pee", None, {"bowel_bladder"}, E),
        ("she fell", None, {"fall"}, U),
        ("my dad fell in the driveway", "fall_check", {"fall"}, U),
        ("mi mamá se cayó anoche", None, {"fall"}, U),
        ("my friend had a leak", None, set(), N),
        ("can you send me info on spinal fluid leaks? my friend had one", None, set(), N),
        ("My husband is doing fine, I'm the one with a fever lol", None, set(), N),
        ("what if I get a fever?", None, set(), N),
        ("I read about spinal headaches, I don't have one", None, set(), N),
    ],
)
def test_it_tells_the_patient_from_others_and_questions(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    "text",
    [
        "I want to die",
        "thinking about ending it all",
        "I'm going to kill myself",
        "everyone would be better off dead without me",
        "no reason to live",
        "I have thought about taking all my pills at once",
        "quiero morirme",
        "me quiero morir",
        "ya no quiero vivir",
    ],
)
def test_it_flags_self_harm_as_an_emergency(text) -> None:
    check(text, "mood_check", {"self_harm"}, E)


@pytest.mark.parametrize(
    "text", ["this pain is killing me", "I'm dying to get back to golf", "not suicidal, just tired"]
)
def test_it_does_not_read_idioms_as_self_harm(text) -> None:
    assert Flag.SELF_HARM not in assess(text).flags


@pytest.mark.parametrize(
    ("text", "context", "topic"),
    [
        ("my leg feels weird", None, "numbness/weakness"),
        ("maybe a bit numb? can't tell", "numbness_check", "numbness/weakness"),
        ("leg swelling", None, "calf_clot"),
        ("pounding headache", None, "csf_leak"),
        ("7-8", "pain_scale", "pain"),
    ],
)
def test_it_reports_undecidable_mentions_as_ambiguous(text, context, topic) -> None:
    a = assess(text, context)
    assert topic in a.ambiguous and a.severity is Severity.WATCH, a.to_dict()


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("fever 101.4 and my incision is draining", None, {"fever", "wound_drainage"}, U),
        ("numb left foot since yesterday and I can't pee", None, {"new_numbness", "bowel_bladder"}, E),
        (
            "legs weak, back pain 10/10, feel numb in the groin",
            None,
            {"new_weakness", "severe_pain", "bowel_bladder"},
            E,
        ),
    ],
)
def test_it_finds_several_flags_in_one_message(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("I fell asleep in my recliner", None),
        ("my ride fell through", "reminder"),
        ("I'm falling behind on my walking", None),
        ("drained after PT, napping", None),
        ("STOP", None),
        ("help", None),
    ],
)
def test_it_ignores_look_alike_idioms(text, context) -> None:
    check(text, context, set(), N)


def test_it_is_deterministic() -> None:
    text = "fever 101.4, incision draining, numb groin, maybe a bit weak, pain 7-8"
    first = json.dumps(assess(text).to_dict(), sort_keys=True)
    for _ in range(20):
        assert json.dumps(assess(text).to_dict(), sort_keys=True) == first


def test_it_gives_evidence_as_spans_of_the_original_text() -> None:
    text = "My incison is LEAKING and I have chills 🤒"
    a = assess(text)
    assert a.evidence
    for ev in a.evidence:
        assert text[ev.span[0] : ev.span[1]] == ev.words
    assert {ev.topic for ev in a.evidence} >= {"wound_drainage", "fever"}


def test_it_returns_an_immutable_json_ready_assessment() -> None:
    a = assess("pain 9/10 and 101.2", "general")
    d = a.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["flags"] == ["fever", "severe_pain"] and d["severity"] == "urgent"
    with pytest.raises(AttributeError):
        a.severity = Severity.NONE  # type: ignore[misc]


def test_it_orders_severities() -> None:
    assert Severity.NONE < Severity.WATCH < Severity.URGENT < Severity.EMERGENCY
    assert max([Severity.WATCH, Severity.EMERGENCY, Severity.URGENT]) is Severity.EMERGENCY


@pytest.mark.parametrize("text", ["", "   ", "...", "1234567", "🎉🎉🎉", "x" * 5000])
def test_it_handles_empty_and_odd_input(text) -> None:
    assert assess(text).severity is Severity.NONE


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("it's a bit red", "wound_check", set(), W),
        ("the wound has opened a little", None, {"wound_redness"}, U),
        ("calves are both a little sore from walking", None, set(), W),
        ("my right calf is sore and swollen", None, {"calf_clot"}, U),
    ],
)
def test_it_softens_only_what_mild_or_bilateral_wording_can_soften(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("no puedo respirar bien", None, {"chest_breathing"}, E),
        ("can't walk well", None, {"new_weakness"}, U),
        ("swallowing fine", "swallow_check", set(), N),
        ("breathing ok", "breathing_check", set(), N),
        ("I'm not going to hurt myself", "mood_check", set(), N),
    ],
)
def test_it_reads_ok_and_well_after_a_symptom_correctly(text, context, flags, severity) -> None:
    check(text, context, flags, severity)
