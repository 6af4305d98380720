"""CSV enrollment import: all rows valid, or nothing written (unless told to skip bad rows).

The file is streamed twice, never held: the first pass validates every row (and remembers only
each row's (MRN, procedure) key, to catch repeats); the second enrolls the good rows in chunks
inside the caller's transaction. Memory stays flat in the size of the file.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.config import DEFAULT_EMERGENCY_REGIONS, Settings
from checkin.core.schedule import Schedule
from checkin.enrollment.csvfile import CsvFormat, check_header, detect_format, iter_rows, read_header
from checkin.enrollment.enroll import FIELDS, EnrollRequest, EnrollResult, enroll_many, parse_request
from checkin.enrollment.phones import region_problem, region_refused
from checkin.enrollment.sanity import phone_holders, surgery_date_problem
from checkin.errors import EnrollmentError, ImportRowError
from checkin.states import EnrollmentStatus
from checkin.store.consents import Provenance
from checkin.store.models import Enrollment, Patient

COLUMNS = FIELDS  # a CSV row holds the fields of one enrollment request, in that order
REQUIRED = ("mrn", "first_name", "procedure", "surgery_date")
CHUNK = 1000  # rows validated against the database, or enrolled, at a time


@dataclass(frozen=True)
class EmergencyNumbers:
    """What messages tell patients to call, and the phone regions those numbers serve (None:
    any; see ``Settings.emergency_regions``)."""

    emergency: str = "911"
    crisis: str = "988"
    regions: frozenset[str] | None = DEFAULT_EMERGENCY_REGIONS

    @classmethod
    def of(cls, settings: Settings) -> EmergencyNumbers:
        return cls(settings.emergency_number, settings.crisis_line, settings.emergency_regions)


@dataclass
class ImportReport:
    rows: int = 0
    errors: list[ImportRowError] = field(default_factory=list)
    enrolled: EnrollResult | None = None
    written: bool = False
    # The file itself is wrong (encoding, header, a line the csv reader cannot get past):
    # skipping bad rows cannot help, and nothing is written.
    file_errors: bool = False
    format: CsvFormat | None = None
    rejects: int = 0  # rows written to the rejects file
    # Rows enrolled although odd (a surgery date let through by ``force``, a phone another
    # patient has): each ``row:column: what``, for the clerk to check.
    warnings: list[ImportRowError] = field(default_factory=list)


def _procedure_ids(schedules: Mapping[str, Schedule]) -> dict[str, str]:
    return {key.lower(): key for key in schedules}


class _Rows:
    """The file's rows parsed into requests, each pass from the top of the file."""

    def __init__(
        self,
        path: Path,
        fmt: CsvFormat,
        header: list[str],
        *,
        schedules: Mapping[str, Schedule],
        default_region: str,
        default_timezone: str,
        numbers: EmergencyNumbers,
    ) -> None:
        self.path, self.fmt, self.header = path, fmt, header
        self.numbers = numbers
        self.schedules = schedules
        self.ids = _procedure_ids(schedules)
        self.default_region = default_region
        self.default_timezone = default_timezone

    def parse(self) -> Iterator[tuple[int, dict[str, str], EnrollRequest | ImportRowError]]:
        for line, row in iter_rows(self.path, self.fmt, self.header):
            if isinstance(row, ImportRowError):
                yield line, {}, row
                continue
            # Procedure ids are matched ignoring case: "Lumbar-Fusion" is lumbar-fusion.
            typed = row.get("procedure", "").strip()
            fields = dict(row, procedure=self.ids.get(typed.lower(), typed))
            try:
                req = parse_request(
                    fields,
                    schedules=self.schedules,
                    default_region=self.default_region,
                    default_timezone=self.default_timezone,
                )
            except EnrollmentError as e:
                yield line, row, ImportRowError(line, e.field, e.problem)
                continue
            refused = region_refused(req.phone, self.numbers.regions) if req.phone else None
            if refused is not None:
                problem = region_problem(refused, self.numbers.emergency, self.numbers.crisis)
                yield line, row, ImportRowError(line, "phone", f"{req.phone} {problem}")
                continue
            yield line, row, req


class _Rejects:
    """The rejects file: each bad row as it was, plus the line and the problem."""

    def __init__(self, fh: IO[str] | None, header: list[str], delimiter: str) -> None:
        self.writer = csv.writer(fh, delimiter=delimiter) if fh is not None else None
        if self.writer is not None:
            self.writer.writerow([*header, "line", "problem"])
        self.header = header
        self.count = 0

    def add(self, row: dict[str, str], error: ImportRowError) -> None:
        if self.writer is not None:
            self.writer.writerow(
                [*(row.get(h, "") for h in self.header), error.line, f"{error.column}: {error.problem}"]
            )
            self.count += 1


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
    rejects: Path | None = None,
    encoding: str | None = None,
    numbers: EmergencyNumbers | None = None,
    force: bool = False,
) -> ImportReport:
    """Validate every row, then enroll; with any bad row nothing is written unless
    ``skip_bad_rows``. A problem of the file itself (encoding, header, an unreadable line) is
    reported as such (``file_errors``) and nothing is written. ``rejects``: a CSV file that
    receives every bad row with its line and problem. ``encoding``: the file's codec, instead of
    detecting it. ``numbers``: the site's emergency numbers; a phone outside the regions they
    serve is a bad row. A surgery date in the past or over a year ahead is a bad row saying what
    would and would not be sent, unless ``force``, which enrolls it with a warning instead; a
    phone shared with another patient (in the file or enrolled) is always only a warning."""
    report = ImportReport()
    try:
        report.format = fmt = detect_format(path, encoding)
        header = read_header(path, fmt)
    except ImportRowError as e:
        report.errors.append(e)
        report.file_errors = True
        return report
    report.errors = check_header(header, COLUMNS, REQUIRED)
    if report.errors:
        report.file_errors = True
        return report
    rows = _Rows(
        path,
        fmt,
        header,
        schedules=schedules,
        default_region=default_region,
        default_timezone=default_timezone,
        numbers=numbers or EmergencyNumbers(),
    )
    with ExitStack() as stack:
        fh = stack.enter_context(rejects.open("w", encoding="utf-8", newline="")) if rejects else None
        checks = _RowChecks(session, rows.schedules, now=now, force=force, report=report)
        bad_lines = _validate(rows, report, _Rejects(fh, header, fmt.delimiter), checks, progress)
    report.errors.sort(key=lambda e: e.line)
    if report.file_errors or (report.errors and not skip_bad_rows):
        return report
    report.enrolled = _enroll(session, rows, bad_lines, schedules=schedules, now=now, actor=actor)
    report.written = True
    return report


class _RowChecks:
    """The checks a parsed row needs beyond its own fields: its surgery date against today, and
    (a chunk at a time, one query each) the database's enrolled patients."""

    def __init__(
        self,
        session: Session,
        schedules: Mapping[str, Schedule],
        *,
        now: datetime,
        force: bool,
        report: ImportReport,
    ) -> None:
        self.session, self.schedules, self.now, self.force = session, schedules, now, force
        self.warnings = report.warnings
        self.phone_mrn: dict[str, tuple[str, int]] = {}  # phone -> (first MRN, line) in the file

    def date(self, line: int, req: EnrollRequest) -> ImportRowError | None:
        """The row's error for an odd surgery date; with ``force`` a warning instead."""
        odd = surgery_date_problem(self.schedules[req.procedure], req, now=self.now)
        if odd is None:
            return None
        if self.force:
            self.warnings.append(ImportRowError(line, "surgery_date", odd))
            return None
        return ImportRowError(line, "surgery_date", f"{odd}; check the date, or import with --force")

    def phone_in_file(self, line: int, req: EnrollRequest) -> None:
        if not req.phone:
            return
        first = self.phone_mrn.setdefault(req.phone, (req.mrn, line))
        if first[0] != req.mrn:
            self.warnings.append(
                ImportRowError(line, "phone", f"{req.phone} is also the phone of line {first[1]}'s patient")
            )

    def enrolled(self, pending: list[tuple[int, dict[str, str], EnrollRequest]]) -> set[tuple[str, str]]:
        """The (MRN, procedure) pairs of ``pending`` already enrolled; warns of each row whose
        phone an enrolled patient with another MRN has."""
        requests = [r for _, _, r in pending]
        holders = phone_holders(self.session, {r.phone for r in requests if r.phone})
        for line, _, req in pending:
            others = sorted({ref for mrn, ref in holders.get(req.phone or "", ()) if mrn != req.mrn})
            if others:
                self.warnings.append(
                    ImportRowError(
                        line,
                        "phone",
                        f"{req.phone} is also the phone of enrolled patient(s) {', '.join(others)}",
                    )
                )
        return _already_enrolled(self.session, requests)


def _validate(
    rows: _Rows,
    report: ImportReport,
    rejects: _Rejects,
    checks: _RowChecks,
    progress: Callable[[int], None] | None,
) -> set[int]:
    """First pass: every row's problems into ``report``; returns the lines not to enroll."""
    first_line: dict[tuple[str, str], int] = {}
    bad: set[int] = set()
    pending: list[tuple[int, dict[str, str], EnrollRequest]] = []

    def reject(line: int, row: dict[str, str], error: ImportRowError) -> None:
        report.errors.append(error)
        rejects.add(row, error)
        bad.add(line)

    def check_enrolled() -> None:
        enrolled = checks.enrolled(pending)
        for line, row, req in pending:
            if (req.mrn, req.procedure) in enrolled:
                reject(
                    line,
                    row,
                    ImportRowError(line, "mrn", f"{req.mrn!r} is already enrolled on {req.procedure}"),
                )
        pending.clear()

    try:
        for line, row, parsed in rows.parse():
            report.rows += 1
            if progress:
                progress(1)
            if isinstance(parsed, ImportRowError):
                reject(line, row, parsed)
                continue
            odd_date = checks.date(line, parsed)
            if odd_date is not None:
                reject(line, row, odd_date)
                continue
            key = (parsed.mrn, parsed.procedure)
            if key in first_line:
                reject(
                    line,
                    row,
                    ImportRowError(line, "mrn", f"{parsed.mrn!r} is already on line {first_line[key]}"),
                )
                continue
            first_line[key] = line
            checks.phone_in_file(line, parsed)
            pending.append((line, row, parsed))
            if len(pending) >= CHUNK:
                check_enrolled()
        check_enrolled()
    except ImportRowError as e:  # the file cannot be read past this line
        report.errors.append(e)
        report.file_errors = True
    report.rejects = rejects.count
    return bad


def _enroll(
    session: Session,
    rows: _Rows,
    bad_lines: set[int],
    *,
    schedules: Mapping[str, Schedule],
    now: datetime,
    actor: str,
) -> EnrollResult:
    """Second pass: enroll the good rows in chunks, flushing each so the session holds none.
    Each row's consent is recorded as the file's name and the row's line."""
    total = EnrollResult()
    chunk: list[EnrollRequest] = []
    lines: list[Provenance] = []

    def flush() -> None:
        done = enroll_many(session, chunk, schedules=schedules, now=now, actor=actor, consent=lines)
        total.patients += done.patients
        total.enrollments += done.enrollments
        total.planned += done.planned
        session.flush()  # the audit rows leave the session; its identity map keeps no rows
        chunk.clear()
        lines.clear()

    for line, _, parsed in rows.parse():
        if line in bad_lines or isinstance(parsed, ImportRowError):
            continue
        chunk.append(parsed)
        lines.append(Provenance("csv", f"csv:{rows.path.name}:{line}"))
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    return total


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
