"""Every custom operation, as pyinfra tests its own: facts in, commands or a noop reason out,
including the drift cases a re-run must notice."""

from __future__ import annotations

import pytest
from pyinfra.facts.files import Directory, File, FileContents
from pyinfra.facts.server import AuthorizedKeys, Groups, Os, Users, Which

from harness.operations import run_operation
from harness.operator import write_secret
from pyinfra_hardening import accounts, database, firewall, login_alerts, passwords, services, ssh, sudo, totp
from pyinfra_hardening.database import MariadbState
from pyinfra_hardening.managed_files import FileState, ManagedFile, candidate_path, sha256_of, validated_file
from pyinfra_hardening.secret_store import Secret
from pyinfra_hardening.services import UnitState, UnitStatus

HASH = Secret("$6$saltsaltsalt$" + "h" * 86, "test")
A_FILE = {"user": "root", "group": "root", "mode": 644}
ED25519_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGHdQ4g9a0xGWr0D6zvpVSlVzQkMxjJq0bYRhrt3Mgm0 alice@laptop"


def path_fact(cls, path: str, value) -> dict:
    return {(cls, (("path", path),)): value}


# --- accounts ----------------------------------------------------------------------------------


def test_a_password_hash_already_set_is_left_alone_and_the_hash_never_printed():
    same = run_operation(
        accounts.password_hash, {accounts.ShadowPassword: sha256_of(HASH.reveal())}, user="alice", hashed=HASH
    )
    assert not same.changes and same.noop == "alice's password hash is already set"
    drifted = run_operation(accounts.password_hash, {accounts.ShadowPassword: "locked"}, user="alice", hashed=HASH)
    assert drifted.commands == ["usermod -p '*MASKED*' alice"]
    assert HASH.reveal() in drifted.raw[0]


@pytest.mark.parametrize("field, changes", [("locked", False), (sha256_of("$6$x$y"), True), (None, True)])
def test_root_is_locked_unless_it_is_already(field, changes):
    outcome = run_operation(accounts.locked_password, {accounts.ShadowPassword: field}, user="root")
    assert outcome.changes is changes
    if changes:
        assert outcome.commands == ["usermod -p '*' root"]


def test_user_accounts_read_every_password_hash_without_printing_it():
    """pyinfra's Users fact holds every account's shadow field: -vvv must not print it."""
    outcome = run_operation(
        accounts.user_account,
        {Users: {}, Groups: [], Os: "Linux", (Which, (("command", "useradd"),)): "/usr/sbin/useradd"},
        print_fact_output=True,
        user="application",
        system=True,
        shell="/usr/sbin/nologin",
        home="/nonexistent",
        ensure_home=False,
        create_home=False,
    )
    assert outcome.commands and outcome.commands[0].startswith("useradd ")
    assert outcome.facts_printed and not any(outcome.facts_printed)


# --- sudo and passwords ------------------------------------------------------------------------


def test_a_sudoers_file_with_nopasswd_is_rewritten_through_visudo():
    path = "/etc/sudoers.d/90-cloud-init-users"
    facts = {
        **path_fact(FileContents, path, ["debian ALL=(ALL) NOPASSWD:ALL"]),
        **path_fact(ManagedFile, path, FileState("root", "root", 0o440, "0" * 64)),
    }
    outcome = run_operation(sudo.sudoers_require_password, facts, path=path)
    assert outcome.uploads == {candidate_path(path): "debian ALL=(ALL) ALL\n"}
    assert "visudo -cf" in outcome.commands[0]


def pam_stack(settings: passwords.PasswordSettings | None = None) -> dict:
    profiles = passwords.pam_profiles(settings or passwords.PasswordSettings(), "pwquality")
    return {
        "enable": [p.name for p in profiles],
        "disable": passwords.REPLACED_PROFILES,
        "wanted": passwords.wanted_common_lines(profiles),
    }


def common_files(**lines: list[str]) -> dict:
    return {(FileContents, (("path", f"/etc/pam.d/common-{name}"),)): found for name, found in lines.items()}


# The common files as pam-auth-update writes them from this project's profiles (Debian 13).
ENABLED = {
    "auth": [
        "auth\trequired\tpam_faillock.so preauth",
        "auth\t[success=3 default=ignore]\tpam_unix.so try_first_pass",
        "auth\t[default=die]\tpam_faillock.so authfail",
        "auth\tsufficient\tpam_faillock.so authsucc",
        "auth\trequisite\t\t\tpam_deny.so",
    ],
    "account": [
        "account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so ",
        "account\trequired\tpam_faillock.so ",
    ],
    "password": [
        "password\trequisite pam_pwquality.so "
        "retry=3 minlen=15 minclass=4 difok=3 ucredit=-1 lcredit=-2 dcredit=-1 ocredit=-1",
        "password\trequisite pam_pwhistory.so remember=5 use_authtok",
        "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass sha512 rounds=65536",
    ],
    "session": ["session\t[default=1]\t\t\tpam_permit.so", "session\trequired\tpam_unix.so "],
}
# Debian's own password line, as a fresh host has it.
DEBIAN_UNIX_PASSWORD = "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt"


def test_a_pam_stack_as_pam_auth_update_wrote_it_is_left_alone():
    outcome = run_operation(passwords.pam_profiles_enabled, common_files(**ENABLED), **pam_stack())
    assert not outcome.changes and "as configured" in outcome.noop


def test_a_jump_over_more_lines_is_the_same_stack():
    """Another package's profile can add lines a jump to the stack's end skips."""
    auth = [line.replace("success=3", "success=4") for line in ENABLED["auth"]]
    outcome = run_operation(passwords.pam_profiles_enabled, common_files(**{**ENABLED, "auth": auth}), **pam_stack())
    assert not outcome.changes


@pytest.mark.parametrize(
    "drift",
    [
        {"password": ["password\trequisite\t\t\tpam_pwquality.so retry=3", *ENABLED["password"][1:]]},
        {"auth": [line for line in ENABLED["auth"] if "preauth" not in line]},
        {"account": ENABLED["account"][:1]},
        {"account": [*ENABLED["account"], "account\t[success=1 default=ignore]\tpam_faillock.so"]},
        {"password": [*ENABLED["password"][:2], DEBIAN_UNIX_PASSWORD]},
        {"auth": [line.replace("try_first_pass", "nullok try_first_pass") for line in ENABLED["auth"]]},
    ],
    ids=[
        "the package's own quality line",
        "no preauth",
        "no account line",
        "a stray line with a long control",
        "Debian's yescrypt line",
        "empty passwords allowed",
    ],
)
def test_a_drifted_pam_stack_is_rebuilt_by_pam_auth_update_and_checked(drift):
    outcome = run_operation(passwords.pam_profiles_enabled, common_files(**{**ENABLED, **drift}), **pam_stack())
    command = outcome.commands[0]
    assert "pam-auth-update --force --enable pyinfra-hardening-passwords" in command
    assert "--disable pwquality cracklib unix" in command
    # Every wanted line is checked, every named module must exist, or the old files come back.
    assert command.count("grep -Eq") == sum(len(lines) for lines in pam_stack()["wanted"].values())
    assert "is not installed" in command and "mv $f.pyinfra-hardening-old $f" in command
    # Whatever count pam-auth-update gives a jump to the stack's end is accepted.
    assert "pam_unix\\.so[[:space:]]+obscure[[:space:]]+use_authtok" in command
    assert "\\[success=[0-9]+[[:space:]]+default=ignore\\]" in command


def test_new_values_change_the_profile_and_the_lines_checked():
    stricter = passwords.PasswordSettings(password_minlen=20, password_remember=0, faillock_deny=5)
    profile = passwords.pam_profiles(stricter, "pwquality")[0]
    assert "minlen=20" in profile.text() and "pam_pwhistory" not in profile.text()
    outcome = run_operation(passwords.pam_profiles_enabled, common_files(**ENABLED), **pam_stack(stricter))
    assert outcome.commands


@pytest.mark.parametrize(
    "settings, hashing",
    [
        ({}, "sha512 rounds=65536"),
        ({"password_hash_rounds": 100000}, "sha512 rounds=100000"),
        ({"password_hashing": "yescrypt"}, "yescrypt"),
    ],
)
def test_new_passwords_are_hashed_as_configured(settings, hashing):
    profiles = passwords.pam_profiles(passwords.PasswordSettings(**settings), "pwquality")
    unix = next(p for p in profiles if p.name == passwords.UNIX_PROFILE)
    text = unix.text()
    assert (
        f"Password:\n\t[success=end default=ignore] pam_unix.so obscure use_authtok try_first_pass {hashing}\n" in text
    )
    # First in the stack, pam_unix asks for the password itself.
    assert f"Password-Initial:\n\t[success=end default=ignore] pam_unix.so obscure {hashing}\n" in text
    assert "nullok" not in text
    outcome = run_operation(
        passwords.pam_profiles_enabled, common_files(**ENABLED), **pam_stack(passwords.PasswordSettings(**settings))
    )
    assert bool(outcome.commands) == (hashing != "sha512 rounds=65536")


def test_a_profile_puts_its_lines_where_pam_auth_update_expects_them():
    faillock = next(p for p in passwords.pam_profiles(passwords.PasswordSettings(), "pwquality") if p.priority == 0)
    text = faillock.text()
    assert "Auth-Type: Primary\nAuth:\n\t[default=die] pam_faillock.so authfail\n" in text
    assert "Account-Type: Additional\nAccount:\n\trequired pam_faillock.so\n" in text
    assert "Account-Initial" not in text


# --- validated files ---------------------------------------------------------------------------


def file_facts(dest: str, content: str | None, mode: int = 0o644) -> dict:
    return path_fact(
        ManagedFile, dest, None if content is None else FileState("root", "root", mode, sha256_of(content))
    )


def test_a_validated_file_as_configured_is_a_noop():
    outcome = run_operation(
        validated_file, file_facts("/etc/x", "a\n"), dest="/etc/x", content="a\n", validator="check {}"
    )
    assert not outcome.changes and outcome.noop == "/etc/x is as configured"


def test_a_changed_file_lands_only_through_its_validator():
    outcome = run_operation(
        validated_file, file_facts("/etc/x", "old\n"), dest="/etc/x", content="new\n", validator="check {}"
    )
    assert outcome.uploads == {candidate_path("/etc/x"): "new\n"}
    swap = outcome.commands[0]
    assert f"if check {candidate_path('/etc/x')}; then mv -f {candidate_path('/etc/x')} /etc/x;" in swap


def test_only_mode_drift_is_fixed_by_chmod():
    outcome = run_operation(
        validated_file,
        file_facts("/etc/x", "a\n", mode=0o666),
        dest="/etc/x",
        content="a\n",
        validator=None,
        mode="600",
    )
    assert outcome.commands == ["chmod 600 /etc/x"] and not outcome.uploads


def test_a_file_with_secrets_travels_through_an_owner_only_file_and_content_is_computed_when_run():
    outcome = run_operation(
        validated_file,
        file_facts("/etc/s", None),
        dest="/etc/s",
        content=lambda: "pw\n",
        validator=None,
        mode="600",
        secret_pattern="(pw)",
    )
    assert outcome.commands[0] == "install -m 600 /dev/null /tmp/pyinfra-temp"
    assert outcome.uploads == {"/tmp/pyinfra-temp": "pw\n"}


# --- SSH ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits, changes", [(4096, False), (8192, False), (2048, True), (None, True)])
def test_the_rsa_host_key_is_replaced_only_when_too_small(bits, changes):
    outcome = run_operation(ssh.rsa_host_key, {ssh.RsaHostKeyBits: bits}, bits=4096)
    assert outcome.changes is changes
    if changes:
        assert "ssh-keygen -q -t rsa -b 4096" in outcome.commands[0]


def test_an_ed25519_host_key_is_made_only_if_missing():
    key = ssh.ED25519_HOST_KEY
    assert not run_operation(ssh.ed25519_host_key, path_fact(File, key, A_FILE)).changes
    assert run_operation(ssh.ed25519_host_key, path_fact(File, key, None)).commands == [
        f"ssh-keygen -q -t ed25519 -N '' -f {key}"
    ]


def test_weak_moduli_are_dropped_only_when_there_are_some():
    assert run_operation(ssh.strong_moduli, {ssh.WeakModuli: 0}).noop == "no weak moduli"
    assert "awk" in run_operation(ssh.strong_moduli, {ssh.WeakModuli: 12}).commands[0]


def test_the_totp_file_is_written_only_when_its_secret_differs_and_never_shown(secret_store):
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    write_secret(secret_store, totp.secret_name("alice"), secret)
    write_secret(secret_store, totp.scratch_name("alice"), "12345678")
    path = "/home/alice/.google_authenticator"
    same = run_operation(ssh.totp_secret_file, path_fact(ssh.FirstLineSha256, path, sha256_of(secret)), user="alice")
    assert not same.changes
    rotated = run_operation(ssh.totp_secret_file, path_fact(ssh.FirstLineSha256, path, "0" * 64), user="alice")
    assert list(rotated.uploads.values()) == [
        totp.google_authenticator_file(Secret(secret, ""), Secret("12345678", ""))
    ]
    assert rotated.commands[-1].startswith("install -o alice -g alice -m 400 ")
    assert not any(secret in command for command in rotated.commands)


def test_sshd_is_reloaded_only_while_it_runs():
    assert run_operation(ssh.reload_sshd, {}, unit="ssh.service").commands == [
        "if systemctl is-active --quiet ssh.service; then systemctl reload ssh.service; fi"
    ]


# --- firewall ----------------------------------------------------------------------------------


def firewall_state(rules: dict[int, str], live_matches: bool = True) -> dict:
    state = {
        family: firewall.FamilyState(sha256_of(text), "live", "live" if live_matches else "other")
        for family, text in rules.items()
    }
    return {firewall.FirewallState: state}


RULES = {4: "*filter\nCOMMIT\n", 6: "*filter\nCOMMIT\n"}


def test_saved_and_live_rules_as_configured_are_a_noop():
    outcome = run_operation(firewall.apply_rules, firewall_state(RULES), rules=RULES, rollback_seconds=60)
    assert not outcome.changes and "saved and live" in outcome.noop


@pytest.mark.parametrize("case", ["new rules", "flushed by hand"])
def test_new_or_drifted_rules_are_tested_then_applied_with_the_rollback_armed(case):
    facts = firewall_state({4: "old", 6: RULES[6]}) if case == "new rules" else firewall_state(RULES, False)
    outcome = run_operation(firewall.apply_rules, facts, rules=RULES, rollback_seconds=45)
    apply = outcome.commands[-1]
    assert apply.index("iptables-restore --test") < apply.index("systemd-run") < apply.index("--on-active=45s")
    assert set(outcome.uploads) == {firewall.candidate(4), firewall.candidate(6)}


def test_rules_are_saved_only_while_the_rollback_timer_still_waits():
    command = run_operation(firewall.persist_rules, {}, tables=("filter",)).commands[0]
    assert command.startswith(f"if ! systemctl is-active --quiet {firewall.ROLLBACK_UNIT}.timer; then")
    assert command.index("exit 1") < command.index("systemctl stop")


# --- database ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shell, changes", [("/usr/sbin/nologin", False), ("/bin/false", False), (None, False), ("/bin/bash", True)]
)
def test_the_mysql_account_gets_a_shell_that_refuses(shell, changes):
    outcome = run_operation(database.no_login_shell, {database.LoginShell: shell}, user="mysql")
    assert outcome.changes is changes
    if changes:
        assert outcome.commands == ["usermod -s /usr/sbin/nologin mysql"]


def test_ownership_is_fixed_recursively_only_when_something_is_off():
    assert not run_operation(database.owned_by, {database.NotOwnedBy: []}, path="/var/lib/mysql", user="mysql").changes
    fixed = run_operation(
        database.owned_by, {database.NotOwnedBy: ["/var/lib/mysql/x"]}, path="/var/lib/mysql", user="mysql"
    )
    assert fixed.commands == ["chown -R mysql:mysql /var/lib/mysql"]


def test_accounts_as_configured_get_no_sql_and_drift_gets_sql_without_the_hash(secret_store):
    write_secret(secret_store, database.APP_DATABASE_PASSWORD, "App-Db-Pass-77")
    db = database.Database(3306, "10.0.0.21", "application", "application", ("10.0.0.11",))
    hashed = database.password_hash(Secret("App-Db-Pass-77", ""))
    grantee = "'application'@'10.0.0.11'"
    configured = MariadbState(
        accounts={
            ("root", "localhost"): {"plugin": "unix_socket"},
            ("application", "10.0.0.11"): {
                "access": 0,
                "plugin": "mysql_native_password",
                "authentication_string": hashed,
                "ssl_type": database.SSL_TYPE_X509,
            },
        },
        schema_privileges={grantee: {("application", p, "NO") for p in database.APP_PRIVILEGES}},
        databases={"application"},
    )
    same = run_operation(
        database.accounts_and_databases, {database.Mariadb: configured}, database=db, dump_account=False
    )
    assert not same.changes and "as configured" in same.noop
    fresh = run_operation(database.accounts_and_databases, {database.Mariadb: None}, database=db, dump_account=False)
    sql = fresh.uploads["/tmp/pyinfra-temp"]
    assert f"CREATE USER {grantee} IDENTIFIED BY PASSWORD '{hashed}' REQUIRE X509;" in sql
    assert fresh.commands[-1].startswith(f"mariadb < {database.SQL_STAGING};")
    assert not any(hashed in command for command in fresh.commands)


# --- login alerts ------------------------------------------------------------------------------


def test_rsyslog_is_asked_for_the_auth_log_only_when_it_is_missing():
    assert run_operation(login_alerts.auth_log_exists, path_fact(File, login_alerts.AUTH_LOG, A_FILE)).noop
    created = run_operation(login_alerts.auth_log_exists, path_fact(File, login_alerts.AUTH_LOG, None))
    assert created.commands[0].startswith("logger -p auth.info ")


# --- services ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, running, enabled, commands",
    [
        (UnitStatus(running=True, enabled=True), True, True, []),
        (UnitStatus(running=False, enabled=True), True, True, ["systemctl start cron"]),
        (UnitStatus(running=False, enabled=False), True, True, ["systemctl start cron", "systemctl enable cron"]),
        (UnitStatus(running=False, enabled=False), None, True, ["systemctl enable cron"]),
        (UnitStatus(running=False, enabled=False), True, None, ["systemctl start cron"]),
        (UnitStatus(running=True, enabled=True), False, False, ["systemctl stop cron", "systemctl disable cron"]),
        (UnitStatus(running=False, enabled=True), False, False, ["systemctl disable cron"]),
        (UnitStatus(running=False, enabled=False), False, False, []),
    ],
)
def test_a_unit_is_started_and_enabled_or_stopped_and_disabled_only_where_it_is_not(status, running, enabled, commands):
    outcome = run_operation(services.unit_running, {UnitState: status}, unit="cron", running=running, enabled=enabled)
    assert outcome.commands == commands
    assert (outcome.noop is None) == bool(commands)


# --- announced reads ---------------------------------------------------------------------------


class RecordingFacts(dict):
    """The facts a test gives, noting which (fact, arguments) an operation looks up."""

    def __init__(self, facts: dict):
        super().__init__(facts)
        self.asked: set = set()

    def __contains__(self, key) -> bool:
        if isinstance(key, tuple):
            self.asked.add(key)
        return super().__contains__(key)


def announced(operation, **arguments) -> set:
    return {(cls, tuple(sorted(kwargs.items()))) for cls, kwargs in operation.announced_reads(**arguments)}


ADMIN_ACCOUNT = {
    "user": "alice",
    "groups": ["sudo"],
    "append": True,
    "shell": "/bin/bash",
    "home": "/home/alice",
    "create_home": True,
    "public_keys": [ED25519_KEY],
    "delete_keys": True,
}


@pytest.mark.parametrize(
    "operation, arguments, facts",
    [
        (
            accounts.user_account,
            ADMIN_ACCOUNT,
            {
                Users: {
                    "alice": {
                        "home": "/home/alice",
                        "shell": "/bin/bash",
                        "group": "alice",
                        "groups": ["sudo"],
                        "uid": 1000,
                        "gid": 1000,
                        "comment": None,
                        "password": "x",
                    }
                },
                Groups: ["alice", "sudo"],
                Os: "Linux",
                **path_fact(Directory, "/home/alice", {"user": "alice", "group": "alice", "mode": 700}),
                **path_fact(Directory, "/home/alice/.ssh", {"user": "alice", "group": "alice", "mode": 700}),
                (AuthorizedKeys, (("path", "/home/alice/.ssh/authorized_keys"), ("user", "alice"))): [ED25519_KEY],
                **path_fact(File, "/home/alice/.ssh/authorized_keys", {"user": "alice", "group": "alice", "mode": 600}),
            },
        ),
        (validated_file, {"dest": "/etc/x", "content": "a\n", "validator": None}, file_facts("/etc/x", "a\n")),
        (services.unit_running, {"unit": "cron"}, {(UnitState, (("unit", "cron"),)): UnitStatus(True, True)}),
    ],
    ids=["server.user for an admin", "validated_file", "unit_running"],
)
def test_a_no_op_reads_only_the_facts_its_operation_announced(operation, arguments, facts):
    """What is announced is read in one round trip: a fact read but not announced costs one of
    its own (pyinfra's server.user changing what it reads would show here)."""
    recording = RecordingFacts(facts)
    outcome = run_operation(operation, recording, **arguments)
    assert not outcome.changes
    assert recording.asked and recording.asked <= announced(operation, **arguments)
