"""One writer per state machine: outbox rows are written only by ``checkin.store.outbox`` (and
new planned rows inserted in bulk by ``checkin.store.bulk``), alert rows only by
``checkin.alerts.lifecycle``. A source scan of ``checkin/``, so a new writer elsewhere fails
here instead of drifting from the drawn state machine."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "checkin"

OUTBOX_OWNERS = ("checkin/store/outbox/",)
OUTBOX_INSERTERS = (*OUTBOX_OWNERS, "checkin/store/bulk.py")
ALERT_OWNERS = ("checkin/alerts/lifecycle/",)

# Columns only those tables have: assigning one on any object outside the owners is a write to
# a row of theirs. (``status`` is shared with enrollments; it is checked by variable name.)
OUTBOX_COLUMNS = frozenset(
    {
        "status_reason",
        "next_attempt_at",
        "claimed_by",
        "lease_until",
        "provider_id",
        "delivery_status",
        "sent_at",
        "answered_at",
        "reminded_at",
        "missed_at",
        "last_attempt_at",
        "last_error_code",
        "attempts",
    }
)
ALERT_COLUMNS = frozenset(
    {
        "escalation_level",
        "next_escalation_at",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
        "resolution_note",
    }
)
WRITE_CALLS = frozenset({"update", "insert", "delete", "insert_ignore"})


@dataclass(frozen=True)
class Write:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _mentions(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _table_of(call: ast.Call) -> str | None:
    """``OutboxMessage``/``Alert`` when ``call`` is ``update(...)``, ``insert(...)``,
    ``delete(...)`` or ``insert_ignore(session, ...)`` on that model or its ``__table__``."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name not in WRITE_CALLS:
        return None
    for model in ("OutboxMessage", "Alert"):
        if any(_mentions(arg, model) for arg in call.args[:2]):
            return model
    return None


def writes(rel: str, source: str) -> list[tuple[str, Write]]:
    """(table, write) for every write to outbox or alert rows in one module's source."""
    tree = ast.parse(source, filename=rel)
    found: list[tuple[str, Write]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            table = _table_of(node)
            if table is not None:
                found.append((table, Write(rel, node.lineno, f"{ast.unparse(node.func)}({table} …)")))
            elif isinstance(node.func, ast.Name) and node.func.id in ("OutboxMessage", "Alert"):
                found.append((node.func.id, Write(rel, node.lineno, f"new {node.func.id}(…)")))
        elif (
            isinstance(node, ast.Attribute) and node.attr == "__table__" and _mentions(node, "OutboxMessage")
        ):
            found.append(("OutboxMessage", Write(rel, node.lineno, "OutboxMessage.__table__ (Core writes)")))
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if not isinstance(t, ast.Attribute):
                        continue
                    owner = ast.unparse(t.value)
                    if owner == "self":
                        continue  # an object's own attribute, not a row
                    if t.attr in OUTBOX_COLUMNS or (t.attr == "status" and "enrollment" not in owner):
                        table = "Alert" if "alert" in owner.lower() else "OutboxMessage"
                        found.append((table, Write(rel, node.lineno, f"{owner}.{t.attr} = …")))
                    elif t.attr in ALERT_COLUMNS:
                        found.append(("Alert", Write(rel, node.lineno, f"{owner}.{t.attr} = …")))
    return found


def _allowed(table: str, write: Write) -> bool:
    if table == "Alert":
        return write.path.startswith(ALERT_OWNERS)
    if write.what.startswith(("new ", "insert(", "insert_ignore(", "OutboxMessage.__table__")):
        return write.path.startswith(OUTBOX_INSERTERS)
    return write.path.startswith(OUTBOX_OWNERS)


def all_writes() -> list[tuple[str, Write]]:
    return [
        w
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.parts
        for w in writes(path.relative_to(ROOT).as_posix(), path.read_text())
    ]


def test_only_the_owners_write_outbox_and_alert_rows() -> None:
    strays = [str(w) for table, w in all_writes() if not _allowed(table, w)]
    assert strays == [], "write these through checkin.store.outbox / checkin.alerts.lifecycle:\n" + "\n".join(
        strays
    )


def test_the_scan_sees_the_owners_writes() -> None:
    # The scan must be able to fail: it finds the owners' own writes of every kind.
    found = {(table, w.path) for table, w in all_writes()}
    assert ("OutboxMessage", "checkin/store/outbox/sending.py") in found
    assert ("OutboxMessage", "checkin/store/outbox/unsent.py") in found
    assert ("Alert", "checkin/alerts/lifecycle/staff.py") in found
    assert ("Alert", "checkin/alerts/lifecycle/ladder.py") in found


@pytest.mark.parametrize(
    "source",
    [
        "session.execute(update(OutboxMessage).values(status='sent'))",
        "stmt = insert(Alert)",
        "insert_ignore(session, OutboxMessage, {}, ['key'])",
        "t = cast(Table, OutboxMessage.__table__)",
        "row.status, row.status_reason = 'dead', 'x'",
        "alert.escalation_level = 2",
        "session.add(OutboxMessage(key='k'))",
    ],
)
def test_it_flags_a_write_outside_the_owners(source: str) -> None:
    scanned = writes("checkin/alerts/probe.py", source)
    assert scanned and not any(_allowed(table, w) for table, w in scanned), scanned


def test_it_does_not_flag_an_enrollment_status_change() -> None:
    assert writes("checkin/enrollment/probe.py", "enrollment.status = 'withdrawn'") == []
