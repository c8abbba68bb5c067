"""The fleet fixture: one running fleet per topology, shared by the fleet's test modules
(starting one takes seconds; each test uses accounts of its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fleet.fleet import CLUSTER, SENTINEL, Fleet, running_fleet


@pytest.fixture(scope="package", params=[CLUSTER, SENTINEL])
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """A running fleet per topology (a test may narrow ``params`` with indirect
    parametrization)."""
    topology: str = request.param
    with running_fleet(topology, tmp_path_factory.mktemp(topology)) as running:
        yield running
