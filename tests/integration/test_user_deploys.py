"""The package as a user composes it: one concern in a deploy of one's own, on a group of
one's own, with keys of one's own in the host data, and a dry run that leaves the secret store
exactly as it was."""

from __future__ import annotations

import pytest

from harness.operator import ADMIN

SSH_ONLY_DEPLOY = "tests/deploys/ssh_only.py"
# Keys a user's own deploys might read; near this project's keys, and none of its business.
USER_KEYS = {"app_users": ["web"], "backup_times": ["02:00"], "ssh_users": ["deploy"]}


def store_contents(operator) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(operator.secrets.iterdir())}


@pytest.fixture
def web(fresh_fleet):
    """One fresh machine in the user's group "web", with no login alert destination anywhere."""
    fleet, operator = fresh_fleet
    operator.host_data = {}
    machine = fleet.start("app", operator.root_public_key)
    return machine, operator, operator.inventory({"app": machine}, groups={"app": "web"}, data=USER_KEYS)


def test_a_dry_run_leaves_the_secret_store_as_it_was_and_says_what_an_apply_generates(web):
    machine, operator, inventory = web
    before = store_contents(operator)

    dry = operator.pyinfra(inventory, SSH_ONLY_DEPLOY, args=("--dry", "--diff"))

    assert dry.returncode == 0, dry.output
    assert f"Secret admin-{ADMIN}.totp-secret is not in the store yet: an apply generates it" in dry.output
    assert store_contents(operator) == before
    assert machine.exec(f"test -e /home/{ADMIN}/.google_authenticator").returncode != 0
