"""The session store's users and config, facts in and commands or text out: only users that
differ are set again (however Redis orders its rules), users the data drops are deleted, and
the ACL file holds hashes, never passwords."""

from __future__ import annotations

import hashlib

import pytest

from harness.operations import run_operation
from pyinfra_hardening.session_store import (
    ADMIN_CLI,
    ADMIN_USER,
    RedisAcl,
    RedisUsers,
    SessionStoreSettings,
    acl_file_text,
    acl_lines,
    acl_users,
    server_config,
    user_commands,
)

APP_PASSWORD, ADMIN_PASSWORD = "app-pass-1", "admin-pass-2"
WANTED = acl_lines(SessionStoreSettings(), APP_PASSWORD, ADMIN_PASSWORD)
# How Redis 7.0 lists the application's user: categories expanded, single commands in any order.
LISTED_APP = (
    f"user application on sanitize-payload #{hashlib.sha256(APP_PASSWORD.encode()).hexdigest()} ~session:* "
    "resetchannels -@all "
    "+@string +@keyspace -flushall -keys -migrate"
)


def in_sync(**live_changes: str) -> RedisUsers:
    """Redis as the last run left it; ``live_changes`` as someone changed it by hand since."""
    read = {
        "default": "user default off resetchannels -@all",
        ADMIN_USER: WANTED[ADMIN_USER],
        "application": LISTED_APP,
    }
    return RedisUsers(live={**read, **live_changes}, written=dict(WANTED), read=read)


def test_the_acl_file_holds_hashes_the_default_user_off_and_dangerous_commands_last():
    text = acl_file_text(WANTED)
    assert APP_PASSWORD not in text and ADMIN_PASSWORD not in text
    assert "#" + hashlib.sha256(APP_PASSWORD.encode()).hexdigest() in WANTED["application"]
    assert WANTED["default"] == "user default off sanitize-payload resetkeys resetchannels -@all"
    # Spelled out on every user: Redis 7.0 lists it after `ACL SETUSER ... reset` but not for a
    # user loaded without it, and the two must compare equal.
    assert all(line.split()[3] == "sanitize-payload" for line in WANTED.values())
    words = WANTED["application"].split()
    assert words[-2:] == ["-@dangerous", "-@admin"] and words.index("-@all") < words.index("+@read")
    assert "~session:*" in words and "resetchannels" in words and "&*" not in words


def test_nothing_is_set_when_redis_has_what_the_file_says_in_its_own_order():
    reordered = LISTED_APP.replace("-flushall -keys -migrate", "-migrate -flushall -keys")
    assert user_commands(in_sync(application=reordered), WANTED) == []


def test_a_permission_changed_in_data_sets_that_user_alone():
    wanted = acl_lines(SessionStoreSettings(redis_app_commands=["+@read"]), APP_PASSWORD, ADMIN_PASSWORD)
    assert user_commands(in_sync(), wanted) == [
        "ACL SETUSER application reset " + " ".join(wanted["application"].split()[2:])
    ]


def test_a_user_changed_or_added_by_hand_is_put_back_or_deleted():
    current = in_sync(application=LISTED_APP + " +flushdb", intruder="user intruder on nopass ~* +@all")
    commands = user_commands(current, WANTED)
    assert commands[0] == "ACL DELUSER intruder"
    assert commands[1].startswith("ACL SETUSER application reset on sanitize-payload #") and len(commands) == 2


def test_a_renamed_application_user_replaces_the_old_one():
    wanted = acl_lines(SessionStoreSettings(redis_app_user="sessions"), APP_PASSWORD, ADMIN_PASSWORD)
    commands = user_commands(in_sync(), wanted)
    assert commands[0] == "ACL DELUSER application"
    assert commands[1].startswith("ACL SETUSER sessions reset on sanitize-payload #")


def test_a_new_admin_password_is_set_last():
    wanted = acl_lines(SessionStoreSettings(), APP_PASSWORD, "rotated")
    wanted["application"] += " +get"
    commands = user_commands(in_sync(), wanted)
    assert [command.split()[2] for command in commands] == ["application", ADMIN_USER]


def test_an_acl_file_redis_could_not_read_sets_every_user_again():
    current = in_sync()
    current.read = None
    assert sorted(command.split()[2] for command in user_commands(current, WANTED)) == sorted(WANTED)


def test_the_operation_waits_for_redis_restarts_it_when_it_cannot_log_in_and_sends_only_differences():
    assert run_operation(acl_users, {RedisAcl: None}, users=WANTED).noop
    locked_out = run_operation(acl_users, {RedisAcl: RedisUsers(live=None)}, users=WANTED)
    assert locked_out.commands == ["systemctl restart redis-server"]
    assert "those of the ACL file" in (run_operation(acl_users, {RedisAcl: in_sync()}, users=WANTED).noop or "")
    changed = run_operation(acl_users, {RedisAcl: in_sync(intruder="user intruder on nopass")}, users=WANTED)
    assert list(changed.uploads.values()) == ["ACL DELUSER intruder\n"]
    assert ADMIN_CLI in changed.commands[-1]


def test_the_fact_reads_each_section_and_what_could_not_be_read():
    users = RedisAcl().process(
        ["live-unreadable", f"written {WANTED['default']}", "read user default off resetchannels -@all"]
    )
    assert users is not None and users.live is None
    assert users.written == {"default": WANTED["default"]} and users.read == {
        "default": "user default off resetchannels -@all"
    }
    assert RedisAcl().process([]) is None


@pytest.mark.parametrize(
    ("persistence", "save", "appendonly"),
    [
        ("none", 'save ""', "appendonly no"),
        ("rdb", "save 3600 1", "appendonly no"),
        ("aof", 'save ""', "appendonly yes"),
    ],
)
def test_the_config_is_tls_only_on_the_private_address(persistence, save, appendonly):
    settings = SessionStoreSettings(redis_persistence=persistence, redis_disabled_commands=["flushall"])
    lines = server_config(settings, "10.0.0.21").splitlines()
    for line in (
        "bind 10.0.0.21",
        "port 0",
        "tls-port 6379",
        "tls-auth-clients yes",
        'tls-protocols "TLSv1.3"',
        "protected-mode yes",
        "enable-debug-command no",
        "enable-module-command no",
        "enable-protected-configs no",
        "tls-prefer-server-ciphers yes",
        'rename-command FLUSHALL ""',
        appendonly,
    ):
        assert line in lines, line
    assert any(line.startswith(save) for line in lines)
    assert not [line for line in lines if line.startswith("requirepass")]


def test_config_is_disabled_unless_data_says_otherwise():
    """Nobody, the admin included, changes the running server: settings come from data."""
    assert 'rename-command CONFIG ""' in server_config(SessionStoreSettings(), "10.0.0.21").splitlines()
    kept = server_config(SessionStoreSettings(redis_disabled_commands=[]), "10.0.0.21")
    assert "rename-command" not in kept
