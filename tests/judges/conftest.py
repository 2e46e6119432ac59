"""The judges' host: an app server as a fresh Debian 13 VM gets it from the defaults."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.containers import Fleet, Machine, build_images
from harness.operator import DEPLOYS, Operator

RELEASE = "debian13"


@dataclass
class HardenedApp:
    fleet: Fleet
    operator: Operator
    app: Machine


@pytest.fixture(scope="session")
def hardened_app(docker_client, tmp_path_factory) -> HardenedApp:
    build_images(RELEASE)
    operator = Operator(tmp_path_factory.mktemp("operator"))
    operator.host_data = {"login_alerts": False}
    fleet = Fleet(docker_client, RELEASE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARDENING_SECRETS_DIR", str(operator.secrets))
        try:
            app = fleet.start("app", operator.root_public_key)
            run = operator.pyinfra(operator.inventory({"app": app}), DEPLOYS["app"])
            assert run.returncode == 0, run.output
            yield HardenedApp(fleet, operator, app)
        finally:
            fleet.remove()
