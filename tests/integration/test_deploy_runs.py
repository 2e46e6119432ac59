"""The operator's flow: bad data is refused untouched, dry run first, apply, re-apply, re-run as admin."""

from __future__ import annotations

import pytest

from harness.operator import ADMIN_PASSWORD, DEPLOYS, ROLE_GROUPS, Operator

ROLES = list(ROLE_GROUPS)


def secrets_of(operator: Operator) -> list[str]:
    return [path.read_text().strip() for path in operator.secrets.iterdir()]


def test_bad_data_is_refused_before_any_host_is_touched(deployment):
    rejected = deployment.rejected
    assert rejected.returncode != 0
    for machine in deployment.machines.values():
        assert f"host {machine.name}: password_minlenght" in rejected.output
    assert "rename it to 'password_minlen'" in rejected.output
    assert "nothing was changed on any host" in rejected.output
    assert deployment.untouched_by_rejected


def test_dry_run_shows_each_file_change_as_a_diff_and_changes_nothing(deployment):
    dry = deployment.dry
    assert dry.returncode == 0, dry.output
    assert "Will create /etc/sudoers.d/10-hardening" in dry.output
    assert "+ %sudo\tALL=(ALL:ALL) ALL" in dry.output
    assert "Will modify /etc/pam.d/common-password" in dry.output
    assert "+ password\trequisite\t\t\tpam_pwquality.so retry=3 minlen=10 difok=3" in dry.output
    # The provider's NOPASSWD rules, shown being taken away.
    assert "- %sudo\tALL=(ALL:ALL) NOPASSWD: ALL" in dry.output
    assert "- debian ALL=(ALL) NOPASSWD:ALL" in dry.output
    assert "+ debian ALL=(ALL) ALL" in dry.output
    assert deployment.untouched_by_dry


@pytest.mark.parametrize("role", ROLES)
def test_each_deploy_changes_only_its_role_then_nothing_on_a_second_run(deployment, role):
    first, second = deployment.first[role], deployment.second[role]
    own_host = deployment.machines[role].name
    assert first.returncode == 0 and not first.failed, first.output
    assert set(first.changed) == {own_host}, "a deploy must touch only its own group's hosts"
    assert second.returncode == 0 and not second.failed, second.output
    assert second.changed == {}, f"second run changed: {second.changed}"


def test_secrets_never_show_in_output(deployment, operator):
    runs = [deployment.dry, *deployment.first.values(), *deployment.second.values()]
    for secret in secrets_of(operator):
        for run in runs:
            assert secret not in run.output


def test_rerun_as_admin_uses_sudo_password_from_store_and_changes_nothing(deployment, operator):
    """Once NOPASSWD is gone, re-runs connect as the admin and sudo with the stored password."""
    inventory = operator.inventory(deployment.machines, user="alice", name=f"as-admin-{deployment.release}")
    run = operator.pyinfra(inventory, *DEPLOYS.values(), args=("-v",))
    assert run.returncode == 0 and not run.failed, run.output
    assert run.changed == {}
    assert ADMIN_PASSWORD not in run.output
    for secret in secrets_of(operator):
        assert secret not in run.output
