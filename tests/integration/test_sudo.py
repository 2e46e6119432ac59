"""Sudo as the guide wants it: always the user's own password, and no broken sudoers ever lands."""

from __future__ import annotations

import pytest

from harness.operator import ADMIN, ADMIN_PASSWORD, ROLE_GROUPS
from harness.provider import PROVIDER_USER
from harness.ssh import login


@pytest.mark.parametrize("role", list(ROLE_GROUPS))
def test_admin_sudo_needs_the_password_and_works_with_it(admin_sessions, role):
    session = admin_sessions[role]
    without = session.run("sudo -n true")
    assert without.status != 0
    assert "password is required" in without.stderr
    # One wrong try (three in a row would lock the account: see the faillock test below).
    wrong = session.run("sudo -S -k -p '' true", stdin="not-the-password\n")
    assert wrong.status != 0
    right = session.run("sudo -S -k -p '' id -u", stdin=ADMIN_PASSWORD + "\n")
    assert right.status == 0 and right.stdout.strip() == "0"


def test_three_wrong_sudo_passwords_lock_the_admin_but_never_out_of_ssh(deployment, operator, admin_sessions):
    """faillock_deny (3) failed passwords lock the account: even the right one is refused then.
    A fresh SSH login (key and TOTP, no password) still gets in, and clears the count."""
    machine, session = deployment.machines["backup"], admin_sessions["backup"]
    sudo = "sudo -S -k -p '' true"
    try:
        assert session.run(sudo, stdin="not-the-password\n" * 3).status != 0
        locked = session.run(sudo, stdin=ADMIN_PASSWORD + "\n")
        assert locked.status != 0, "the right password was accepted after three wrong ones"
        records = machine.check(f"faillock --user {ADMIN}").splitlines()
        assert sum(line.rstrip().endswith(" V") for line in records) == 3, records
        fresh = login(machine, ADMIN, key=operator.admin_key, totp_secret=operator.totp_secret(ADMIN))
        try:
            assert fresh.run(sudo, stdin=ADMIN_PASSWORD + "\n").status == 0
        finally:
            fresh.close()
    finally:
        machine.check(f"faillock --user {ADMIN} --reset")


def test_no_nopasswd_rule_is_left_in_any_sudoers_file(deployment):
    for machine in deployment.machines.values():
        assert machine.exec("grep -rlE '^[^#]*NOPASSWD' /etc/sudoers /etc/sudoers.d").stdout == ""
        assert machine.exec("visudo -c").returncode == 0
        # The provider's user had NOPASSWD and no password: it can no longer become root.
        assert machine.exec("sudo -n true", user=PROVIDER_USER).returncode != 0


BROKEN_SUDOERS_DEPLOY = "tests/deploys/broken_sudoers.py"


def test_a_broken_sudoers_candidate_never_replaces_the_live_file(deployment, operator, admin_sessions):
    machine = deployment.machines["app"]
    live = "/etc/sudoers.d/10-hardening"
    before = machine.check(f"sha256sum {live}")

    run = operator.pyinfra(deployment.admin_inventory, BROKEN_SUDOERS_DEPLOY, args=("--limit", machine.name))

    assert run.returncode != 0 and run.failed, run.output
    assert "failed validation; the live file was left as it was" in run.output
    assert machine.check(f"sha256sum {live}") == before
    assert machine.exec(f"ls {live}.hardening-candidate").returncode != 0, "candidate left behind"
    assert admin_sessions["app"].run("sudo -S -k -p '' true", stdin=ADMIN_PASSWORD + "\n").status == 0
