"""The package as a user composes it: one concern in a deploy of one's own, on a group of
one's own, with keys of one's own in the host data, and a dry run that leaves the secret store
exactly as it was."""

from __future__ import annotations

import paramiko
import pytest

from harness.operator import ADMIN, ADMIN_PASSWORD
from harness.ssh import login

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


def test_one_concern_in_a_users_own_deploy_applies_alone_and_then_changes_nothing(web):
    machine, operator, inventory = web

    first = operator.pyinfra(inventory, SSH_ONLY_DEPLOY)

    assert first.returncode == 0 and not first.failed, first.output
    assert (operator.secrets / f"admin-{ADMIN}.totp-secret").exists(), "generated on apply"
    # Only what the deploy asked for: no Monit, no firewall rules.
    assert machine.exec("command -v monit").returncode != 0
    assert machine.exec("test -e /etc/iptables/rules.v4").returncode != 0
    # From outside: root and passwords are refused, the admin gets in with key and TOTP.
    with pytest.raises(paramiko.AuthenticationException):
        login(machine, "root", key=operator.root_key)
    with pytest.raises(paramiko.AuthenticationException):
        login(machine, ADMIN, password=ADMIN_PASSWORD)
    with login(machine, ADMIN, key=operator.admin_key, totp_secret=operator.totp_secret(ADMIN)) as session:
        assert session.run("whoami").stdout.strip() == ADMIN

    as_admin = operator.inventory({"app": machine}, user=ADMIN, name="as-admin", groups={"app": "web"}, data=USER_KEYS)
    second = operator.pyinfra(as_admin, SSH_ONLY_DEPLOY)
    assert second.returncode == 0 and second.changed == {}, second.output
