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


def context_problem(context: str) -> str | None:
    """None for a context triage knows (or any ``*_reminder``); else what is wrong, with a
    suggestion. Triage itself reads an unknown context as ``general``, which from a person
    typing ``--context wound`` is a silent mistake."""
    from checkin.core.suggest import unknown
    from checkin.core.triage.lexicon import CONTEXTS

    c = context.strip().lower()
    if c in CONTEXTS or c.endswith("_reminder"):
        return None
    return unknown("context", context, CONTEXTS)


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
    problem = context_problem(args.context) if args.context is not None else None
    if problem:
        ap.error(problem)
    sys.stdout.write(assessment_json(args.text, args.context) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())


@click.command("triage")
@click.argument("text")
@click.option("--context", default=None, help="What the reply answers: pain_scale, fever_check, ...")
def triage(text: str, context: str | None) -> None:
    """Assess one patient reply and print the assessment as JSON."""
    problem = context_problem(context) if context is not None else None
    if problem:
        raise click.BadParameter(problem, param_hint="--context")
    click.echo(assessment_json(text, context))


COMMANDS = [triage]
