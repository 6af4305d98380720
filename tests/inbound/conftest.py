from __future__ import annotations

from collections.abc import Iterator

import pytest

from checkin.deps import Services
from tests.inbound.support import services_for


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    s = services_for(db_url)
    yield s
    s.engine.dispose()
