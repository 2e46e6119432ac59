"""Fixtures shared by the suite. Integration fixtures start real systemd containers and always
remove them, even when a test fails."""

from __future__ import annotations

import os
import re

import docker
import pytest
from xdist.scheduler import LoadScopeScheduling

from harness.containers import RELEASES, remove_leftovers, run_owner
from harness.operator import Operator


@pytest.fixture(scope="session")
def operator(tmp_path_factory) -> Operator:
    operator = Operator(tmp_path_factory.mktemp("operator"))
    # Tests log in with the same store as pyinfra runs: TOTP windows used are shared.
    os.environ["HARDENING_SECRETS_DIR"] = str(operator.secrets)
    return operator


@pytest.fixture(scope="session")
def docker_client():
    return docker.from_env()


def pytest_configure(config: pytest.Config) -> None:
    run_owner()  # before pytest-xdist starts its workers, so theirs is this process too


def _remove_leftovers_once(config: pytest.Config) -> None:
    """Containers a killed earlier run left behind, removed by the main process (the workers
    share its run)."""
    if hasattr(config, "workerinput"):
        return
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        return  # no engine here (a unit-only run): nothing can be left over
    remove_leftovers(client)


def pytest_sessionstart(session: pytest.Session) -> None:
    _remove_leftovers_once(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _remove_leftovers_once(session.config)


def pytest_collection_modifyitems(items):
    """Tests under tests/integration (and the slow judges of tests/judges) need Docker; the rest
    are unit tests."""
    for item in items:
        kind = "integration" if {"integration", "judges"} & set(item.path.parts) else "unit"
        item.add_marker(getattr(pytest.mark, kind))


class ReleaseGroups(LoadScopeScheduling):
    """pytest-xdist's scheduling by scope, with this suite's scopes: the tests of one release's
    fleet (a release in their parameters' id) go to one worker, so no fleet is built twice, and
    each other module's tests to one. Written here, not as ``xdist_group`` marks: xdist 3.8's
    loadgroup renames node ids in a way pytest 9.2 no longer reads, and every worker then built
    both fleets."""

    def _split_scope(self, nodeid: str) -> str:
        module, _, test = nodeid.partition("::")
        ids = re.search(r"\[(.*)\]$", test)
        return next((part for part in (ids.group(1).split("-") if ids else []) if part in RELEASES), module)


def pytest_xdist_make_scheduler(config, log):
    return ReleaseGroups(config, log)
