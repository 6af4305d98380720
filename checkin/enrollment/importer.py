"""CSV enrollment import: all rows valid, or nothing written (unless told to skip bad rows)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.core.schedule import Schedule
from checkin.enrollment.enroll import EnrollRequest, EnrollResult, enroll_many, parse_request
from checkin.errors import EnrollmentError, ImportRowError
from checkin.states import EnrollmentStatus
from checkin.store.models import Enrollment, Patient

COLUMNS = (
    "mrn",
    "first_name",
    "phone",
    "email",
    "procedure",
    "surgery_date",
    "timezone",
    "language",
    "smoker",
    "channel",
    "attributes",
)
REQUIRED = ("mrn", "first_name", "procedure", "surgery_date")


@dataclass
class ImportReport:
    rows: int = 0
    errors: list[ImportRowError] = field(default_factory=list)
    enrolled: EnrollResult | None = None
    written: bool = False


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Return the header and (line number, row) pairs; raises ImportRowError for a bad file."""
    try:
        data = path.read_bytes().decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as e:
        raise ImportRowError(1, "-", f"the file is not UTF-8 (byte {e.start})") from None
    reader = csv.reader(io.StringIO(data, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ImportRowError(1, "-", "the file is empty") from None
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise ImportRowError(1, unknown[0], f"unknown column (expected some of: {', '.join(COLUMNS)})")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ImportRowError(1, missing[0], "required column is missing")
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise ImportRowError(1, min(dupes), "column appears twice")
    rows: list[tuple[int, dict[str, str]]] = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            rows.append((line, {"__width__": f"has {len(values)} fields, the header has {len(header)}"}))
            continue
        rows.append((line, dict(zip(header, values, strict=True))))
    return header, rows


def import_csv(
    session: Session,
    path: Path,
    *,
    schedules: Mapping[str, Schedule],
    default_region: str,
    default_timezone: str,
    now: datetime,
    skip_bad_rows: bool = False,
    actor: str = "system",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Validate every row, then enroll; with any bad row nothing is written unless skip_bad_rows."""
    report = ImportReport()
    try:
        _, rows = read_rows(path)
    except ImportRowError as e:
        report.errors.append(e)
        return report
    report.rows = len(rows)
    good: list[tuple[int, EnrollRequest]] = []
    first_line: dict[tuple[str, str], int] = {}
    for line, row in rows:
        if "__width__" in row:
            report.errors.append(ImportRowError(line, "-", row["__width__"]))
            continue
        try:
            req = parse_request(
                row, schedules=schedules, default_region=default_region, default_timezone=default_timezone
            )
        except EnrollmentError as e:
            report.errors.append(ImportRowError(line, e.field, e.problem))
            continue
        key = (req.mrn, req.procedure)
        if key in first_line:
            report.errors.append(
                ImportRowError(line, "mrn", f"{req.mrn!r} is already on line {first_line[key]}")
            )
            continue
        first_line[key] = line
        good.append((line, req))
        if progress:
            progress(1)

    enrolled = _already_enrolled(session, [r for _, r in good])
    kept = []
    for line, req in good:
        if (req.mrn, req.procedure) in enrolled:
            report.errors.append(
                ImportRowError(line, "mrn", f"{req.mrn!r} is already enrolled on {req.procedure}")
            )
        else:
            kept.append(req)
    report.errors.sort(key=lambda e: e.line)
    if report.errors and not skip_bad_rows:
        return report
    report.enrolled = enroll_many(session, kept, schedules=schedules, now=now, actor=actor)
    report.written = True
    return report


def _already_enrolled(session: Session, requests: list[EnrollRequest]) -> set[tuple[str, str]]:
    mrns = sorted({r.mrn for r in requests})
    found: set[tuple[str, str]] = set()
    for i in range(0, len(mrns), 500):
        found.update(
            (m, p)
            for m, p in session.execute(
                select(Patient.mrn, Enrollment.procedure)
                .join(Enrollment, Enrollment.patient_id == Patient.id)
                .where(Patient.mrn.in_(mrns[i : i + 500]), Enrollment.status == EnrollmentStatus.ACTIVE)
            )
        )
    return found
