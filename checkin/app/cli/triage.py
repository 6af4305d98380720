"""``checkin triage "TEXT" [--context KIND]``: print one reply's Assessment as JSON.

The ``checkin`` command wires ``main`` in; ``assessment_json`` is the pure core it prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import click


def assessment_json(text: str, context: str | None = None) -> str:
    """The Assessment of ``text`` under ``context`` as one line of JSON (keys sorted)."""
    from checkin.core.triage.assess import assess  # lexicons load on first use, not on `checkin --help`

    return json.dumps(assess(text, context).to_dict(), ensure_ascii=False, sort_keys=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``TEXT [--context KIND]``, print the JSON, return 0 (2 on a usage error)."""
    ap = argparse.ArgumentParser(
        prog="checkin triage", description="Triage one patient reply and print it as JSON."
    )
    ap.add_argument("text", help="the reply, as the patient wrote it")
    ap.add_argument(
        "--context", default=None, help="what the reply answers: pain_scale, <topic>_check, reminder, general"
    )
    args = ap.parse_args(list(argv) if argv is not None else None)
    sys.stdout.write(assessment_json(args.text, args.context) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())


@click.command("triage")
@click.argument("text")
@click.option("--context", default=None, help="What the reply answers: pain_scale, fever_check, ...")
def triage(text: str, context: str | None) -> None:
    """Assess one patient reply and print the assessment as JSON."""
    click.echo(assessment_json(text, context))


COMMANDS = [triage]
