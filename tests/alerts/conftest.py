from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from checkin.deps import Services
from tests.alerts.support import make_services


@pytest.fixture
def services(db_url: str, tmp_path: Path) -> Iterator[Services]:
    s = make_services(db_url, tmp_path)
    yield s
    s.engine.dispose()
