"""Reading an enrollment CSV as spreadsheets write it, one row at a time.

Excel saves "CSV" in the machine's code page (Windows-1252 in the Americas and Western Europe)
unless told "CSV UTF-8", and with ``;`` between fields where the decimal mark is a comma. So:

- encoding: a byte-order mark decides (UTF-8, UTF-16); otherwise UTF-8 if the whole file is
  valid UTF-8, else Windows-1252 if it decodes as that. A file that is neither is refused with
  the line of its first bad byte. The check streams the bytes; it never holds the file.
- delimiter: whichever of ``,`` ``;`` and tab splits the header line (outside quotes) most.
- header: names are matched ignoring case and surrounding spaces; an unknown, missing or
  repeated column is a header problem (never a "bad row"), with a suggestion where one fits.
- rows: streamed with the line each starts on; a field longer than ``MAX_FIELD`` characters
  is an error of that row and column, and a field the csv module cannot read at all (over its
  own 128 KiB limit, usually an unclosed quote) stops the file at that line.
"""

from __future__ import annotations

import codecs
import csv
import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from checkin.errors import ImportRowError

MAX_FIELD = 1000  # characters; longer than any real value of any column
_CHUNK = 1 << 20
_DELIMITERS = (",", ";", "\t")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass(frozen=True)
class CsvFormat:
    encoding: str  # a Python codec name
    delimiter: str
    note: str = ""  # what was guessed, for the operator ("read as Windows-1252 ...")


def _first_bad_byte(path: Path, encoding: str) -> tuple[int, int, int] | None:
    """(line, column, byte) of the first byte ``encoding`` cannot decode, or None."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line, line_start, offset = 1, 0, 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                # e.start is relative to what the decoder held: its buffered tail plus chunk.
                held = len(e.object) - len(chunk)
                bad = offset - held + e.start
                before = chunk[: max(bad - offset, 0)]
                line += before.count(b"\n")
                if b"\n" in before:
                    line_start = offset + before.rindex(b"\n") + 1
                return line, bad - line_start + 1, e.object[e.start]
            if not chunk:
                return None
            line += chunk.count(b"\n")
            if b"\n" in chunk:
                line_start = offset + chunk.rindex(b"\n") + 1
            offset += len(chunk)


def detect_format(path: Path, encoding: str | None = None) -> CsvFormat:
    """The encoding and delimiter of ``path``; raises ImportRowError naming the line of the
    first byte that fits no supported encoding."""
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    note = ""
    if encoding is None:
        encoding = next((name for bom, name in _BOMS if head.startswith(bom)), None)
    if encoding is None:
        bad = _first_bad_byte(path, "utf-8")
        if bad is None:
            encoding = "utf-8-sig"
        elif _first_bad_byte(path, "cp1252") is None:
            encoding = "cp1252"
            line, column, byte = bad
            note = (
                f"read as Windows-1252: not UTF-8 (byte 0x{byte:02X} on line {line}, column {column}); "
                "save from Excel as 'CSV UTF-8' to avoid the guess"
            )
        else:
            line, column, byte = bad
            raise ImportRowError(
                line,
                "-",
                f"byte 0x{byte:02X} at character {column} is not UTF-8 (nor Windows-1252); "
                "save the file from Excel as 'CSV UTF-8 (Comma delimited)'",
            )
    else:
        bad = _first_bad_byte(path, encoding)
        if bad is not None:
            line, column, byte = bad
            raise ImportRowError(line, "-", f"byte 0x{byte:02X} at character {column} is not {encoding}")
    text = head.decode(encoding, errors="replace")
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return CsvFormat(encoding, _delimiter(first), note)


def _delimiter(header: str) -> str:
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _key(name: str) -> str:
    return name.strip().lower()


def check_header(
    header: Sequence[str], columns: Sequence[str], required: Sequence[str]
) -> list[ImportRowError]:
    """Every problem of the header line, each with a suggestion where one fits."""
    names = [_key(h) for h in header]
    problems: list[ImportRowError] = []
    for name in names:
        if name in columns:
            continue
        if not name:
            problems.append(ImportRowError(1, "-", "a column has no name; delete the empty column"))
            continue
        spelled = name.replace(" ", "_").replace("-", "_")
        guess = (
            spelled
            if spelled in columns
            else next(iter(difflib.get_close_matches(spelled, columns, 1, 0.7)), None)
        )
        hint = f"did you mean {guess}?" if guess else "delete the column (checkin reads no other)"
        problems.append(ImportRowError(1, name, f"unknown column; {hint} Columns: {', '.join(columns)}"))
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(ImportRowError(1, name, "column appears twice"))
    for name in required:
        if name not in names:
            problems.append(ImportRowError(1, name, "required column is missing"))
    return problems


def read_header(path: Path, fmt: CsvFormat) -> list[str]:
    """The header's column names (matched ignoring case and spaces); ImportRowError if none."""
    with path.open(encoding=fmt.encoding, newline="") as fh:
        try:
            header = next(csv.reader(fh, delimiter=fmt.delimiter), None)
        except csv.Error as e:
            raise ImportRowError(1, "-", f"cannot read the header: {e}") from None
    if not header or not any(h.strip() for h in header):
        raise ImportRowError(1, "-", "the file is empty (the first line must name the columns)")
    return [_key(h) for h in header]


def iter_rows(
    path: Path, fmt: CsvFormat, header: Sequence[str]
) -> Iterator[tuple[int, dict[str, str] | ImportRowError]]:
    """(line the row starts on, its fields by column) for each non-blank row after the header,
    or an ImportRowError for a row that is too wide, too narrow or has an over-long field.

    Raises ImportRowError when the file cannot be read past a line (the csv module's own field
    limit, usually an unclosed quote): nothing after it can be trusted.
    """
    with path.open(encoding=fmt.encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=fmt.delimiter)
        end = 0
        while True:
            start = end + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise ImportRowError(
                    reader.line_num, "-", f"cannot read the file from here: {e} (an unclosed quote?)"
                ) from None
            end = reader.line_num
            if start == 1:
                continue  # the header
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield (
                    start,
                    ImportRowError(start, "-", f"has {len(values)} fields, the header has {len(header)}"),
                )
                continue
            row = dict(zip(header, values, strict=True))
            long = next((c for c, v in row.items() if len(v) > MAX_FIELD), None)
            if long is not None:
                yield (
                    start,
                    ImportRowError(
                        start, long, f"is {len(row[long]):,} characters long; the limit is {MAX_FIELD:,}"
                    ),
                )
                continue
            yield start, row


def count_lines(path: Path) -> int:
    """Physical lines in ``path`` (for a progress bar), read in chunks."""
    n = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            n += chunk.count(b"\n")
    return n
