"""The database server's settings and the SQL that makes MariaDB's accounts what they say."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyinfra.api import Inventory

from hardening import database, ssh
from hardening.database import MariadbState
from hardening.files import render
from hardening.secrets import Secret
from hardening.settings import SettingsError, validate_inventory
from harness.operator import make_key

pytestmark = pytest.mark.usefixtures("secret_store")

APP_IP, OTHER_APP_IP, DB_IP, BACKUP_IP = "10.0.0.11", "10.0.0.12", "10.0.0.21", "10.0.0.31"
PASSWORD = Secret("App-Db-Pass-77", "test")


@pytest.fixture
def fleet(tmp_path):
    """app1, db1 and backup1 with their private addresses; keyword arguments add host data."""
    admins = [{"name": "alice", "ssh_keys": [make_key(tmp_path / "alice", "alice@test")]}]

    def build(**extra) -> Inventory:
        addresses = {"app1": APP_IP, "db1": DB_IP, "backup1": BACKUP_IP}
        hosts = [(name, {"private_ip": ip, **extra.get(name, {})}) for name, ip in addresses.items()]
        return Inventory((hosts, {"admin_users": admins, "login_alerts": False}),
                         app_servers=(["app1"], {}), db_servers=(["db1"], {}), backup_servers=(["backup1"], {}))

    return build


def refusal(inventory: Inventory) -> str:
    with pytest.raises(SettingsError) as error:
        validate_inventory(inventory)
    return str(error.value)


def test_the_database_and_its_backups_follow_the_inventory(fleet):
    settings = validate_inventory(fleet())
    db = settings["db1"]
    assert (db.database.bind_address, db.database.app_hosts, db.database.name) == (DB_IP, (APP_IP,), "application")
    assert db.backups.destinations == (BACKUP_IP,) and db.backups.time == (0, 1) and db.backups.keep == 7
    receiver = settings["backup1"].backup_receiver
    assert receiver.sources == (DB_IP,) and receiver.keep == 30
    # The backup server is given the public half of the key the database server copies with.
    private = serialization.load_ssh_private_key(db.backups.ssh_key.reveal().encode(), password=None)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert receiver.ssh_public_key.startswith(public.decode())
    assert settings["app1"].database is None and settings["app1"].backup_receiver is None


def test_generated_secrets_stay_the_same_from_run_to_run(fleet):
    first, second = validate_inventory(fleet())["db1"], validate_inventory(fleet())["db1"]
    assert first.database.password.reveal() == second.database.password.reveal()
    assert len(first.database.password.reveal()) >= 24
    assert first.backups.ssh_key.reveal() == second.backups.ssh_key.reveal()


def small_rsa_public_key(path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


@pytest.mark.parametrize("db_data, key, explanation", [
    ({"private_ip": None}, "private_ip", "MariaDB listens only on the private address"),
    ({"backup_public_key": "nowhere.pem"}, "backup_public_key", "is not a file on this machine"),
    ({"backup_public_key": None}, "backup_public_key", "is not set"),
    ({"backup_public_key": "PRIVATE"}, "backup_public_key", "is a PRIVATE key"),
    ({"backup_public_key": "SMALL"}, "backup_public_key", "at least 3072 bits"),
    ({"backup_time": "24:00"}, "backup_time", "'HH:MM'"),
    ({"backup_time": "1:00"}, "backup_time", "'HH:MM'"),
    ({"backup_keep": 0}, "backup_keep", "from 1 to 1000"),
    ({"app_database": "app-db"}, "app_database", "A-Z a-z 0-9 _"),
    ({"app_database_user": "root"}, "app_database_user", "not root"),
])
def test_bad_database_data_is_refused_with_the_fix(fleet, tmp_path, backup_key_pair, db_data, key, explanation):
    if db_data.get("backup_public_key") == "PRIVATE":
        db_data = {"backup_public_key": str(backup_key_pair[0])}
    elif db_data.get("backup_public_key") == "SMALL":
        db_data = {"backup_public_key": small_rsa_public_key(tmp_path / "small.pem")}
    message = refusal(fleet(db1=db_data))
    assert f"host db1: {key} = " in message and explanation in message
    assert "fix:" in message


def test_a_backup_server_needs_the_address_the_database_servers_copy_to(fleet):
    message = refusal(fleet(backup1={"private_ip": None}))
    assert "host backup1: private_ip = None is not set, but the database servers copy backups to it" in message


def test_without_backups_no_key_is_needed(fleet):
    db = validate_inventory(fleet(db1={"backups": False, "backup_public_key": None}))["db1"]
    assert db.backups is None and db.database is not None


# --- SQL -----------------------------------------------------------------------------------------


def app_account(hashed: str, privileges=database.APP_PRIVILEGES, schema="application", access=0) -> tuple:
    priv = {"access": access, "plugin": "mysql_native_password", "authentication_string": hashed}
    grants = {(schema, privilege, "NO") for privilege in privileges}
    return priv, grants


def state_with(accounts: dict, schema_privileges: dict | None = None, databases=("application",)) -> MariadbState:
    root = {("root", "localhost"): {"plugin": "mysql_native_password", "authentication_string": "invalid",
                                    "auth_or": [{}, {"plugin": "unix_socket"}]}}
    return MariadbState(accounts={**root, **accounts}, schema_privileges=schema_privileges or {},
                        databases=set(databases))


def settings_database(app_hosts=(APP_IP,)):
    return database.Database(3306, DB_IP, "application", "application", PASSWORD, app_hosts)


def test_the_password_hash_is_mariadbs():
    # What SELECT PASSWORD('password') returns on MariaDB 10.11 and 11.8
    assert database.password_hash(Secret("password", "test")) == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"


def test_a_database_that_is_as_configured_gets_no_sql():
    hashed = database.password_hash(PASSWORD)
    priv, grants = app_account(hashed)
    state = state_with({("application", APP_IP): priv}, {f"'application'@'{APP_IP}'": grants})
    assert database.desired_statements(state, settings_database(), None) == []


def test_a_fresh_server_gets_the_database_and_one_account_per_app_server():
    statements = database.desired_statements(state_with({}, databases=()), settings_database((APP_IP, OTHER_APP_IP)),
                                             None)
    assert statements[0] == "CREATE DATABASE `application` CHARACTER SET utf8mb4;"
    grants = [statement for statement in statements if statement.startswith("GRANT")]
    assert grants == [f"GRANT SELECT, INSERT, UPDATE, DELETE ON `application`.* TO 'application'@'{ip}';"
                      for ip in (APP_IP, OTHER_APP_IP)]
    assert not any(PASSWORD.reveal() in statement for statement in statements)


@pytest.mark.parametrize("drift", ["password", "privilege", "global", "grant option", "other grants"])
def test_an_account_that_drifted_is_made_again(drift):
    hashed = database.password_hash(PASSWORD)
    priv, grants = app_account("*0000" if drift == "password" else hashed, access=1 if drift == "global" else 0)
    if drift == "privilege":
        grants |= {("application", "DROP", "NO")}
    if drift == "grant option":
        grants = {(schema, privilege, "YES") for schema, privilege, _ in grants}
    grantee = f"'application'@'{APP_IP}'"
    state = state_with({("application", APP_IP): priv}, {grantee: grants})
    if drift == "other grants":
        state.other_privileges.add(grantee)
    statements = database.desired_statements(state, settings_database(), None)
    assert statements[:2] == [f"DROP USER IF EXISTS {grantee};",
                              f"CREATE USER {grantee} IDENTIFIED BY PASSWORD '{hashed}';"]


def test_accounts_of_app_servers_gone_from_the_inventory_are_dropped():
    hashed = database.password_hash(PASSWORD)
    priv, grants = app_account(hashed)
    state = state_with({("application", APP_IP): priv, ("application", OTHER_APP_IP): priv},
                       {f"'application'@'{APP_IP}'": grants, f"'application'@'{OTHER_APP_IP}'": grants})
    assert database.desired_statements(state, settings_database(), None) == [
        f"DROP USER 'application'@'{OTHER_APP_IP}';"]


def test_the_cleanup_removes_anonymous_and_remote_root_and_the_test_database():
    state = state_with({("", "localhost"): {}, ("root", "%"): {}}, databases=("application", "test"))
    state.accounts[("root", "localhost")] = {"plugin": "mysql_native_password", "authentication_string": "*ABCD"}
    state.test_grants.append(("test\\_%", "", "%"))
    statements = database.cleanup_statements(state)
    assert "DROP USER ''@'localhost';" in statements and "DROP USER 'root'@'%';" in statements
    assert "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket;" in statements
    assert "DROP DATABASE `test`;" in statements and "FLUSH PRIVILEGES;" in statements


def test_debians_root_by_socket_is_left_alone():
    assert database.cleanup_statements(state_with({})) == []


def test_underscores_in_a_database_name_are_not_wildcards_in_its_grant():
    assert database.schema_pattern("my_app") == "my\\_app"


# --- SSH for the backup account ------------------------------------------------------------------


def test_the_backup_server_admits_its_account_by_key_alone_and_only_for_sftp(fleet):
    settings = validate_inventory(fleet(backup1={"ssh_allow_users": ["alice"]}))["backup1"]
    text = render(ssh.MANAGED_DROP_IN, final=True, two_factor=True, methods="publickey,keyboard-interactive",
                  allow_users=settings.ssh_allow_users, allow_groups=(), crypto=None, probe_user="alice",
                  backup_account=ssh.backups.sshd_match_block(settings))
    assert "AllowUsers alice db-backup" in text
    block = text.split("Match User db-backup", 1)[1]
    assert "AuthenticationMethods publickey\n" in block and "ChrootDirectory /srv/db-backups" in block
    assert "ForceCommand internal-sftp -d /incoming -u 0577 -p open,close,write," in block
    assert "read," not in block and "remove" not in block and "readdir" not in block
    keys = ssh.backups.authorized_keys(settings)
    assert keys.startswith(f'restrict,from="{DB_IP}" ssh-ed25519 ')


def test_a_dump_password_the_option_file_cannot_quote_is_refused(fleet, secret_store):
    (secret_store / "backup-dump-password").write_text('my"pass\n')
    (secret_store / "backup-dump-password").chmod(0o600)
    message = refusal(fleet())
    assert "host db1: backups = True needs the dump password in" in message and "double quote" in message


def test_a_stored_backup_key_that_is_not_a_key_is_refused_on_both_ends(fleet, secret_store):
    (secret_store / "backup-ssh-key").write_text("not a key\n")
    (secret_store / "backup-ssh-key").chmod(0o600)
    message = refusal(fleet())
    assert "host db1: backups = True needs the key in" in message and "not an OpenSSH private key" in message
    assert "host backup1: offsite_backup_keep = 30 needs the database servers' backup key" in message


def test_without_database_servers_the_drop_box_accepts_no_key(tmp_path):
    admins = [{"name": "alice", "ssh_keys": [make_key(tmp_path / "alice", "alice@test")]}]
    inventory = Inventory(([("backup1", {"private_ip": BACKUP_IP})], {"admin_users": admins, "login_alerts": False}),
                          backup_servers=(["backup1"], {}))
    settings = validate_inventory(inventory)["backup1"]
    assert "ssh-ed25519" not in ssh.backups.authorized_keys(settings)
