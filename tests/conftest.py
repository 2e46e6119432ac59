"""Fixtures shared by the suite. Integration fixtures start real systemd containers and always
remove them, even when a test fails."""

from __future__ import annotations

import docker
import pytest

from harness.containers import remove_leftovers
from harness.operator import Operator


@pytest.fixture(scope="session")
def operator(tmp_path_factory) -> Operator:
    return Operator(tmp_path_factory.mktemp("operator"))


@pytest.fixture(scope="session")
def docker_client():
    client = docker.from_env()
    remove_leftovers(client)
    yield client
    remove_leftovers(client)


def pytest_collection_modifyitems(items):
    """Tests under tests/integration need Docker; the rest are unit tests."""
    for item in items:
        kind = "integration" if "integration" in item.path.parts else "unit"
        item.add_marker(getattr(pytest.mark, kind))
