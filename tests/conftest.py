"""Fixtures shared by the suite. Integration fixtures start real systemd containers and always
remove them, even when a test fails."""

from __future__ import annotations

import os

import docker
import pytest

from harness.containers import remove_leftovers
from harness.operator import Operator


@pytest.fixture(scope="session")
def operator(tmp_path_factory) -> Operator:
    operator = Operator(tmp_path_factory.mktemp("operator"))
    # Tests log in with the same store as pyinfra runs: TOTP windows used are shared.
    os.environ["HARDENING_SECRETS_DIR"] = str(operator.secrets)
    return operator


@pytest.fixture(scope="session")
def docker_client():
    client = docker.from_env()
    remove_leftovers(client)
    yield client
    remove_leftovers(client)


def pytest_collection_modifyitems(items):
    """Tests under tests/integration (and the slow judges of tests/judges) need Docker; the rest
    are unit tests."""
    for item in items:
        kind = "integration" if {"integration", "judges"} & set(item.path.parts) else "unit"
        item.add_marker(getattr(pytest.mark, kind))
