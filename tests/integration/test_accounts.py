"""Accounts as a user meets them: admin logins, a locked root, a locked app user, password rules."""

from __future__ import annotations

import re

import pytest

from harness.operator import ADMIN, ROLE_GROUPS
from harness.provider import PROVIDER_ROOT_PASSWORD, PROVIDER_USER

STRONG_PASSWORD = "Wx7#kvq-Lmzt-Rp2d"
TEST_USER_PASSWORD = "Start-Pass-2024"


@pytest.mark.parametrize("role", list(ROLE_GROUPS))
def test_admin_logs_in_and_has_bash_sudo_group_and_private_keys_file(admin_sessions, role):
    result = admin_sessions[role].run("echo $SHELL; id -nG; stat -c '%a %U' ~/.ssh ~/.ssh/authorized_keys")
    shell, groups, ssh_dir, keys_file = result.stdout.splitlines()
    assert shell == "/bin/bash"
    assert "sudo" in groups.split()
    assert ssh_dir == f"700 {ADMIN}" and keys_file == f"600 {ADMIN}"


def test_existing_admin_keeps_groups_it_already_had(deployment):
    groups = deployment.machines["app"].check(f"id -nG {ADMIN}").split()
    assert {"staff", "sudo"} <= set(groups)


def test_root_password_is_locked_and_su_refuses_it(deployment):
    machine = deployment.machines["db"]
    assert machine.check("passwd -S root").split()[1] == "L"
    # The provider's root password worked before the deploy; now su must refuse it.
    attempt = machine.exec("su -c true root", user=PROVIDER_USER, stdin=PROVIDER_ROOT_PASSWORD + "\n")
    assert attempt.returncode != 0
    # pam_faillock, after pam_unix in the stack, ends a failed attempt as "Permission denied".
    assert "Authentication failure" in attempt.stderr or "Permission denied" in attempt.stderr


def test_application_user_has_no_home_shell_or_password(deployment):
    app, db = deployment.machines["app"], deployment.machines["db"]
    name, _, _, _, _, home, shell = app.check("getent passwd application").strip().split(":")
    assert (home, shell) == ("/nonexistent", "/usr/sbin/nologin")
    assert app.exec("test -e /nonexistent").returncode != 0
    assert app.check("passwd -S application").split()[1] == "L"
    refused = app.exec("su -s /bin/sh -c true application </dev/null", user=PROVIDER_USER)
    assert refused.returncode != 0
    assert app.exec("su application -c true").stdout.strip().startswith("This account is currently not available")
    assert db.exec("getent passwd application").returncode != 0, "only app servers get the app user"


@pytest.fixture
def password_changer(deployment):
    """A throwaway user who changes their own password through PAM, as any user would."""
    machine = deployment.machines["backup"]
    machine.check(f"useradd -m pwtest && echo 'pwtest:{TEST_USER_PASSWORD}' | chpasswd")
    # login.defs' PASS_MIN_DAYS (1) would refuse a change on the day the password was set.
    machine.check("chage -m 0 pwtest")

    def change_to(new_password: str):
        return machine.exec("passwd", user="pwtest", stdin=f"{TEST_USER_PASSWORD}\n" + f"{new_password}\n" * 6)

    yield change_to
    machine.check("userdel -r pwtest 2>/dev/null || userdel pwtest")


@pytest.mark.parametrize(
    "weak, rule",
    [
        ("Sh0rt!abc-Xy9", "shorter than minlen=15"),
        ("no-upper-case-9", "no uppercase letter (ucredit=-1)"),
        ("ONLY-ONE-LOWER-9x", "fewer than 2 lowercase letters (lcredit=-2)"),
        ("No-Digits-Here-x", "no digit (dcredit=-1)"),
        ("NoSymbols1234ab", "no symbol (ocredit=-1)"),
    ],
)
def test_weak_password_is_refused(password_changer, weak, rule):
    result = password_changer(weak)
    assert result.returncode != 0, f"{weak!r} was accepted though it has {rule}"
    assert "BAD PASSWORD" in result.stderr


def test_strong_password_is_accepted_and_hashed_with_sha512_and_the_set_rounds(password_changer, deployment):
    """password_hashing and password_hash_rounds (ANSSI BP-028: sha512, at least the profile's rounds)."""
    result = password_changer(STRONG_PASSWORD)
    assert result.returncode == 0, result.stderr
    shadow = deployment.machines["backup"].check("getent shadow pwtest").split(":")[1]
    assert shadow.startswith("$6$rounds=65536$"), shadow[:20]


def test_an_account_with_an_empty_password_cannot_be_logged_into(deployment):
    """No nullok: an empty password is no password (su asks PAM as a console login would)."""
    machine = deployment.machines["backup"]
    machine.check("useradd -m nopass && passwd -d nopass && useradd -m asker")
    try:
        attempt = machine.exec("su nopass -c id", user="asker", stdin="\n")
    finally:
        machine.check("userdel -r nopass; userdel -r asker")
    assert attempt.returncode != 0 and "uid=" not in attempt.stdout, attempt.stdout
    # su's words for the stack's refusal depend on which module ends it (pam_faillock, after pam_unix).
    assert re.search(r"su: (Authentication failure|Permission denied)", attempt.stderr), attempt.stderr


def test_a_recent_password_cannot_be_used_again(password_changer, deployment):
    """pam_pwhistory (password_remember): back to the password the user had before is refused."""
    assert password_changer(STRONG_PASSWORD).returncode == 0
    machine = deployment.machines["backup"]
    again = machine.exec("passwd", user="pwtest", stdin=f"{STRONG_PASSWORD}\n" + f"{TEST_USER_PASSWORD}\n" * 6)
    assert again.returncode != 0
    assert "already used" in again.stdout + again.stderr


def test_time_sync_service_is_enabled(deployment):
    for machine in deployment.machines.values():
        assert machine.check("systemctl is-enabled systemd-timesyncd").strip() == "enabled"


def test_an_account_created_after_the_deploy_gets_login_defs_ageing(deployment):
    """A new account's password expires after password_max_days and may not be changed again on
    the day it was set (password_min_days); the admins' never expires (see Password ageing)."""
    machine = deployment.machines["backup"]
    machine.check(f"useradd -m pwage && echo 'pwage:{TEST_USER_PASSWORD}' | chpasswd")
    try:
        ageing = machine.check("chage -l pwage")
        refused = machine.exec("passwd", user="pwage", stdin=f"{TEST_USER_PASSWORD}\n" + "Another-Pass-9x\n" * 2)
    finally:
        machine.check("userdel -r pwage 2>/dev/null || userdel pwage")
    assert re.search(r"Maximum number of days between password change\s*:\s*365", ageing), ageing
    assert refused.returncode != 0 and "wait longer" in refused.stdout + refused.stderr
    assert re.search(r"^Password expires\s*:\s*never$", machine.check(f"chage -l {ADMIN}"), re.M)
