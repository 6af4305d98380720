"""`checkin discharge` and `checkin appointments` end to end on a SQLite file."""

from __future__ import annotations

from tests.test_cli import run  # noqa: F401 - the fixture


def enroll(run) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert run("db", "upgrade").exit_code == 0
    result = run(
        "enroll",
        *("--mrn", "100234", "--first-name", "Maria", "--phone", "(312) 555-0147"),
        *("--procedure", "lumbar-fusion", "--surgery-date", "2030-03-14", "--force"),
    )
    assert result.exit_code == 0, result.output


def test_it_books_moves_lists_and_removes_a_visit(run) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    enroll(run)
    booked = run("appointments", "add", "100234", "--kind", "six_week_visit", "--at", "2030-04-25 09:30")
    assert booked.exit_code == 0, booked.output
    assert "visit-6-weeks" in booked.output and "2030-04-24 12:00" in booked.output

    preview = run(
        "appointments", "add", "100234", "--kind", "six_week_visit", "--at", "2030-04-29 14:00", "--dry-run"
    )
    assert preview.exit_code == 0 and "dry run" in preview.output and "2030-04-28 12:00" in preview.output
    listed = run("appointments", "list", "100234")
    assert "2030-04-25 09:30" in listed.output  # the dry run changed nothing

    removed = run("appointments", "remove", "100234", "--kind", "six_week_visit")
    assert removed.exit_code == 0 and "1 cancelled" in removed.output
    assert "cancelled" in run("appointments", "list", "100234").output


def test_it_records_discharge_and_names_bad_input(run) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    enroll(run)
    early = run("discharge", "100234", "--date", "2030-03-01")
    assert early.exit_code == 1 and "before the surgery date" in early.output
    ok = run("discharge", "100234", "--date", "2030-03-16")
    assert ok.exit_code == 0, ok.output
    assert "discharge 2030-03-16" in run("appointments", "list", "100234").output
    typo = run("appointments", "add", "100234", "--kind", "sixweek", "--at", "2030-04-25 09:30")
    assert typo.exit_code == 1 and "kinds it uses" in typo.output
