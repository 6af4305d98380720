"""deploy/requirements.lock (what the image installs) pins every runtime dependency of
pyproject.toml, at a version its floor allows, with hashes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    text = (ROOT / "deploy" / "requirements.lock").read_text()
    return {
        re.sub(r"[-_.]+", "-", m.group(1)).lower(): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", text, re.M)
    }


def test_every_dependency_is_pinned_within_its_floor() -> None:
    locked = pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in locked, f"{req.name} is not in deploy/requirements.lock (run uv pip compile)"
        assert req.specifier.contains(locked[name], prereleases=True), (
            req.name,
            locked[name],
            str(req.specifier),
        )


def test_every_pin_has_a_hash() -> None:
    text = (ROOT / "deploy" / "requirements.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    assert blocks and all("--hash=sha256:" in b for b in blocks if "==" in b)
