"""Fixtures for the local ECS endpoint tests: an endpoint per test and a client with a cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecs_executor.local_ecs import LocalEcs
from tests.integration.local_ecs.helpers import CLUSTER, make_client


@pytest.fixture
def lecs(tmp_path: Path) -> Iterator[LocalEcs]:
    with LocalEcs(
        provisioning_seconds=0.05, deprovisioning_seconds=0.01, log_dir=str(tmp_path / "logs")
    ) as ecs:
        yield ecs


@pytest.fixture
def client(lecs: LocalEcs) -> Any:
    assert lecs.url is not None
    ecs = make_client(lecs.url)
    ecs.create_cluster(clusterName=CLUSTER)
    return ecs
