"""The repository's documents stand on their own: every ADR is in the index, every relative link
resolves, and nothing a hospital's clone ships points at files kept outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADR = ROOT / "docs" / "adr"
# Documents the development team keeps beside the checkout; a clone never has them.
OUTSIDE = re.compile(r"\.\./shared|\b(?:STYLE|RELIABILITY|SCHEDULING|DESIGN)\.md\b|\bclinical\.md\b")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def tracked(*patterns: str) -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    return [ROOT / line for line in out.splitlines() if line]


def test_every_adr_is_listed_in_the_index() -> None:
    index = (ADR / "README.md").read_text(encoding="utf-8")
    records = sorted(p.name for p in ADR.glob("[0-9][0-9][0-9][0-9]-*.md"))
    assert records, "no ADR found"
    assert [name for name in records if f"({name})" not in index] == []
    numbers = [name[:4] for name in records]
    assert len(numbers) == len(set(numbers)), f"two ADRs share a number: {numbers}"


@pytest.mark.parametrize("doc", ["README.md", "CONTRIBUTING.md", "CHANGELOG.md", "docs"])
def test_relative_links_resolve(doc: str) -> None:
    files = [ROOT / doc] if doc.endswith(".md") else sorted((ROOT / doc).rglob("*.md"))
    broken = [
        f"{path.relative_to(ROOT)}: {target}"
        for path in files
        for target in LINK.findall(path.read_text(encoding="utf-8"))
        if "://" not in target and not target.startswith("mailto:") and not (path.parent / target).exists()
    ]
    assert broken == []


def test_nothing_shipped_points_outside_the_repository() -> None:
    shipped = tracked("*.md", "*.py", "*.yaml", "*.j2", "*.toml", "deploy/*", ".ci/*", "scripts/*")
    pointing = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()[:80]}"
        for path in shipped
        if path.is_file() and "tests" not in path.relative_to(ROOT).parts[:1]
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert pointing == []
