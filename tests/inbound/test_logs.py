"""checkin.logs: JSON lines, PHI-named fields redacted, digit runs masked, CR/LF flattened."""

from __future__ import annotations

import io
import json
import logging

import pytest

from checkin.logs import JsonFormatter, RedactFilter, handler, scrub


@pytest.fixture
def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger("checkin.test_logs")
    logger.handlers = [handler(stream)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_it_writes_one_json_object_per_line_with_extra_fields(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    logger.info("inbound processed", extra={"patient_ref": "P-ABC2345", "inbound_id": 12})
    (rec,) = lines(stream)
    assert rec["msg"] == "inbound processed" and rec["patient_ref"] == "P-ABC2345" and rec["inbound_id"] == 12
    assert rec["level"] == "info" and rec["logger"] == "checkin.test_logs"


def test_it_redacts_fields_named_for_phi(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("x", extra={"body": "my wound is leaking", "phone": "+16175550123", "from_phone": "+1617"})
    (rec,) = lines(stream)
    assert rec["body"] == rec["phone"] == rec["from_phone"] == "[redacted]"


@pytest.mark.parametrize(
    "raw", ["+16175550123", "(617) 555-0123", "617.555.0123", "617 555 0123", "MRN 12345678"]
)
def test_it_masks_runs_of_seven_or_more_digits(raw: str) -> None:
    out = scrub(f"call {raw} now")
    assert not any(c.isdigit() for c in out.replace("call", "")), out


def test_it_keeps_the_date_of_a_timestamp_but_masks_a_bare_date() -> None:
    # An operations record's times must stay readable; a bare date may be a date of birth.
    assert scrub("open since 2026-03-01T15:00:00+00:00") == "open since 2026-03-01T15:00:00+00:00"
    assert scrub("at 2026-03-01 15:00:00+00:00") == "at 2026-03-01 15:00:00+00:00"
    assert scrub("born 1957-03-12") == "born ########"
    assert scrub("call 2026-03-0115 now") == "call ########## now"


def test_it_keeps_short_numbers_such_as_ids_and_temperatures() -> None:
    assert scrub("outbox 42 temp 101.5 at 10:30") == "outbox 42 temp 101.5 at 10:30"


def test_it_flattens_cr_lf_so_a_text_cannot_forge_a_log_line(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    logger.warning("got %s", "ok\r\nINFO fake log line")
    assert len(stream.getvalue().splitlines()) == 1
    assert "\n" not in lines(stream)[0]["msg"]  # type: ignore[operator]


def test_it_scrubs_exception_text(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        raise ValueError("'+16175550123' is not valid")
    except ValueError:
        logger.exception("failed")
    (rec,) = lines(stream)
    assert "6175550123" not in json.dumps(rec) and "ValueError" in str(rec["exc"])


def test_it_never_drops_a_record_with_a_bad_format_string() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "broken %d", ("not a number",), None)
    assert RedactFilter().filter(record)
    assert "broken" in JsonFormatter().format(record)
