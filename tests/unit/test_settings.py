"""The settings layer refuses bad input with a message naming host, key, value and fix."""

from __future__ import annotations

import pytest
from pyinfra.api import Inventory

from hardening import settings as settings_module
from hardening.settings import SettingsError, validate_inventory
from harness.operator import ADMIN_PASSWORD as PASSWORD
from harness.operator import crypt_hash, write_secret

ED25519_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGHdQ4g9a0xGWr0D6zvpVSlVzQkMxjJq0bYRhrt3Mgm0 alice@laptop"
# An ed25519 key body announced as ssh-rsa.
MISLABELLED_KEY = "ssh-rsa " + ED25519_KEY.split()[1]
ADMINS = [{"name": "alice", "ssh_keys": [ED25519_KEY]}]
ALERTS = {"alert_email": "ops@example.com", "smtp_host": "smtp.example.com"}


pytestmark = pytest.mark.usefixtures("secret_store")


def make_inventory(all_data=None, host_data=None, group_data=None) -> Inventory:
    data = {"admin_users": ADMINS, **ALERTS, **(all_data or {})}
    hosts = [("app1", {"private_ip": "10.0.0.11", **(host_data or {})})]
    return Inventory((hosts, data), app_servers=(["app1"], group_data or {}))


def problems(**layers) -> str:
    with pytest.raises(SettingsError) as error:
        validate_inventory(make_inventory(**layers))
    return str(error.value)


def test_defaults_are_the_guides_values():
    settings = validate_inventory(make_inventory())["app1"]
    assert settings.password_policy.module_arguments() == (
        "retry=3 minlen=10 difok=3 ucredit=-1 lcredit=-2 dcredit=-1 ocredit=-1"
    )
    assert settings.admin_group == "sudo" and settings.app_user == "application"
    assert settings.lock_root_password and settings.sudo_require_password
    assert settings.time_sync_service == "systemd-timesyncd"
    assert settings.admin("alice").password_hash.reveal().startswith("$6$")


BAD_INPUT = [
    # (layer data, key named in the message, words of the explanation)
    ({"admin_users": [{"name": "Alice", "ssh_keys": [ED25519_KEY]}]}, "admin_users", "lowercase login name"),
    ({"admin_users": [{"name": "root", "ssh_keys": [ED25519_KEY]}]}, "admin_users", "other than root"),
    ({"admin_users": [{"name": "alice"}]}, "admin_users", "no SSH public key"),
    ({"admin_users": [{"name": "alice", "ssh_keys": ["hello"]}]}, "admin_users", "public key type"),
    ({"admin_users": [{"name": "alice", "ssh_keys": ["-----BEGIN OPENSSH PRIVATE KEY-----"]}]},
     "admin_users", "PRIVATE key"),
    ({"admin_users": [{"name": "alice", "ssh_keys": [MISLABELLED_KEY]}]}, "admin_users", "does not match its type"),
    ({"admin_users": [{"name": "alice", "ssh_keys": ["ssh-ed25519 !!!notbase64"]}]}, "admin_users", "not base64"),
    ({"admin_users": [{"name": "alice", "ssh_key": [ED25519_KEY]}]}, "admin_users", "unknown field"),
    ({"admin_users": ADMINS * 2}, "admin_users", "twice"),
    ({"admin_users": "alice"}, "admin_users", "must be a list"),
    ({"admin_users": []}, "admin_users", "nobody able to administer"),
    ({"admin_group": "Wheel Group"}, "admin_group", "lowercase login name"),
    ({"app_user": "App"}, "app_user", "lowercase login name"),
    ({"private_ip": "10.0.0.300"}, "private_ip", "not an IP address"),
    ({"private_ip": "8.8.8.8"}, "private_ip", "public address"),
    ({"private_ip": "0.0.0.0"}, "private_ip", "listen everywhere"),
    ({"private_ip": "::1"}, "private_ip", "not one host's address"),
    ({"admin_cidrs": ["10.0.0.1/24"]}, "admin_cidrs", "host bits set"),
    ({"admin_cidrs": "10.0.0.0/24"}, "admin_cidrs", "must be a list"),
    ({"ssh_port": 70000}, "ssh_port", "from 1 to 65535"),
    ({"ssh_user": "Bad User"}, "ssh_user", "lowercase login name"),
    ({"password_minlen": 4}, "password_minlen", "from 8 to 128"),
    ({"password_retry": "3"}, "password_retry", "whole number"),
    ({"password_minlen": 8, "password_ucredit": -3, "password_lcredit": -3, "password_dcredit": -2},
     "password_minlen", "credits require"),
    ({"password_difok": 20}, "password_difok", "larger than password_minlen"),
    ({"lock_root_password": "yes"}, "lock_root_password", "True or False"),
    ({"time_sync_service": "ntpd"}, "time_sync_service", "must be one of"),
    ({"pasword_minlen": 12}, "pasword_minlen", "rename it to 'password_minlen'"),
]


@pytest.mark.parametrize(
    "data, key, explanation", BAD_INPUT, ids=[f"{number}-{case[1]}" for number, case in enumerate(BAD_INPUT)]
)
def test_bad_input_is_refused_naming_host_key_and_fix(data, key, explanation):
    message = problems(host_data=data)
    assert f"host app1: {key} = " in message
    assert explanation in message
    assert "fix:" in message
    assert "nothing was changed on any host" in message


def test_plaintext_secret_in_committed_data_is_refused_and_not_echoed():
    message = problems(group_data={"_sudo_password": "hunter2-secret"})
    assert "host app1: _sudo_password = *MASKED* is a plaintext secret" in message
    assert "hunter2-secret" not in message
    assert "admin-NAME.password" in message


def test_a_database_password_in_committed_data_says_where_it_belongs():
    message = problems(group_data={"app_database_password": "Sup3r-Secret-DB"})
    assert "app_database_password = *MASKED* is a plaintext secret" in message
    assert "Sup3r-Secret-DB" not in message and "app-database-password" in message


def test_knobs_about_passwords_are_not_mistaken_for_secrets():
    message = problems(host_data={"password_minlenght": 12})
    assert "password_minlenght = 12 is not a setting" in message


def test_plaintext_secret_given_on_the_command_line_is_left_alone():
    inventory = make_inventory()
    inventory.override_data["ssh_password"] = "typed-at-the-prompt"
    assert validate_inventory(inventory)["app1"]


def test_every_host_with_a_problem_is_reported_at_once():
    inventory = Inventory(
        ([("app1", {"private_ip": "1.2.3.4"}), ("db1", {"ssh_port": 0})], {"admin_users": ADMINS}),
    )
    with pytest.raises(SettingsError) as error:
        validate_inventory(inventory)
    assert [(p.host, p.key) for p in error.value.problems] == [("app1", "private_ip"), ("db1", "ssh_port")]


def test_missing_password_hash_says_where_to_put_it(secret_store):
    (secret_store / "admin-alice.password-hash").unlink()
    message = problems()
    assert "has no password hash" in message
    assert str(secret_store / "admin-alice.password-hash") in message
    assert "$HARDENING_ADMIN_ALICE_PASSWORD_HASH" in message


def test_a_plaintext_password_stored_as_the_hash_is_refused(secret_store):
    write_secret(secret_store, "admin-alice.password-hash", PASSWORD)
    message = problems()
    assert "not a crypt(3) hash" in message
    assert PASSWORD not in message


def test_a_secret_file_others_can_read_is_refused(secret_store):
    (secret_store / "admin-alice.password-hash").chmod(0o644)
    message = problems()
    assert "chmod 600" in message


def test_connecting_as_an_admin_needs_their_sudo_password(secret_store):
    (secret_store / "admin-alice.password").unlink()
    message = problems(host_data={"ssh_user": "alice"})
    assert "host app1: ssh_user = 'alice' connects as an admin whose sudo needs a password" in message


def test_environment_overrides_the_store(monkeypatch, secret_store):
    (secret_store / "admin-alice.password-hash").unlink()
    monkeypatch.setenv("HARDENING_ADMIN_ALICE_PASSWORD_HASH", crypt_hash("Other-Pass-99"))
    settings = validate_inventory(make_inventory())["app1"]
    assert settings.admin("alice").password_hash.source == "$HARDENING_ADMIN_ALICE_PASSWORD_HASH"


def test_secret_prints_masked():
    settings = validate_inventory(make_inventory())["app1"]
    secret = settings.admin("alice").sudo_password
    assert PASSWORD not in f"{secret} {secret!r} {settings!r}"


def test_without_admins_even_unlocked_sudo_and_root_are_refused_since_ssh_takes_only_admin_keys():
    message = problems(all_data={"admin_users": [], "sudo_require_password": False, "lock_root_password": False})
    assert "SSH will take only admins' keys: nobody could log in" in message


def test_settings_are_validated_once_per_run(monkeypatch):
    monkeypatch.setattr(settings_module, "_validated", {})
    inventory = make_inventory()
    host = inventory.get_host("app1")
    assert settings_module.settings_for(host) is settings_module.settings_for(host)


SSH_BAD_INPUT = [
    ({"ssh_allow_users": ["bob"]}, "ssh_allow_users", "leaves out admin(s) alice"),
    ({"ssh_allow_groups": ["wheel"]}, "ssh_allow_groups", "leaves out admin_group 'sudo'"),
    ({"ssh_probe_user": "bob"}, "ssh_probe_user", "is not one of admin_users"),
    ({"ssh_probe_key": "/nonexistent/id_ed25519"}, "ssh_probe_key", "is not a file on this machine"),
    ({"ssh_two_factor": "yes"}, "ssh_two_factor", "True or False"),
    ({"ssh_allow_users": "alice"}, "ssh_allow_users", "must be a list"),
    ({"admin_users": [{"name": "alice", "ssh_keys": [ED25519_KEY], "two_factor": "no"}]},
     "admin_users", "two_factor that is not True or False"),
]


@pytest.mark.parametrize("data, key, explanation", SSH_BAD_INPUT, ids=[case[1] for case in SSH_BAD_INPUT])
def test_ssh_settings_that_would_shut_admins_out_are_refused(data, key, explanation):
    message = problems(host_data=data)
    assert f"host app1: {key} = " in message
    assert explanation in message


def test_a_malformed_totp_secret_in_the_store_is_refused(secret_store):
    write_secret(secret_store, "admin-alice.totp-secret", "1234")
    message = problems()
    assert "is not base32" in message and "1234" not in message


def test_totp_secrets_are_generated_for_enrolled_admins_only(secret_store):
    admins = [{"name": "alice", "ssh_keys": [ED25519_KEY]},
              {"name": "bob", "ssh_keys": [ED25519_KEY], "two_factor": False}]
    write_secret(secret_store, "admin-bob.password-hash", crypt_hash(PASSWORD))
    settings = validate_inventory(make_inventory(all_data={"admin_users": admins}))["app1"]
    assert settings.admin("alice").totp_secret is not None
    assert settings.admin("bob").totp_secret is None
    assert settings.admins_without_two_factor() == ["bob"]
    assert not (secret_store / "admin-bob.totp-secret").exists()
