"""The database server's settings and the SQL that makes MariaDB's accounts what they say."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyinfra.api import Inventory

from harness.checked import checked_hosts as validate_inventory
from harness.operator import make_key
from pyinfra_hardening import backups, database, ssh
from pyinfra_hardening import secret_store as secret_store_module
from pyinfra_hardening.database import MariadbState
from pyinfra_hardening.secret_store import Secret
from pyinfra_hardening.settings import SettingsError, settings_for

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
        return Inventory(
            (hosts, {"admin_users": admins, "login_alerts": False}),
            app_servers=(["app1"], {}),
            db_servers=(["db1"], {}),
            backup_servers=(["backup1"], {}),
        )

    return build


def refusal(inventory: Inventory) -> str:
    with pytest.raises(SettingsError) as error:
        validate_inventory(inventory)
    return str(error.value)


def test_the_database_and_its_backups_follow_the_inventory(fleet):
    hosts = validate_inventory(fleet())
    db = database.database_of(hosts["db1"])
    assert (db.bind_address, db.app_hosts, db.name) == (DB_IP, (APP_IP,), "application")
    plan = backups.backups_of(hosts["db1"])
    assert plan.destinations == (BACKUP_IP,) and plan.time == (0, 1) and plan.keep == 7
    assert settings_for(hosts["backup1"], backups.DropBoxSettings).offsite_backup_keep == 30


def test_secrets_are_generated_on_apply_only_and_then_stay_the_same(fleet, secret_store):
    """While planning or on --dry, a stand-in leaves the store alone; an apply stores the secret once."""
    stand_in = secret_store_module.generated("app-database-password", database.random_password, executing=False)
    assert stand_in.source == "(generated on apply)" and not (secret_store / "app-database-password").exists()
    first = secret_store_module.generated("app-database-password", database.random_password, executing=True)
    second = secret_store_module.generated("app-database-password", database.random_password, executing=True)
    assert first.reveal() == second.reveal() and len(first.reveal()) >= 24
    assert (secret_store / "app-database-password").stat().st_mode & 0o777 == 0o600


def test_the_drop_box_takes_the_public_half_of_the_copy_key(fleet, monkeypatch):
    validate_inventory(fleet())
    monkeypatch.setattr(backups.compat, "executing", lambda: True)
    private = serialization.load_ssh_private_key(backups.copy_key().reveal().encode(), password=None)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f'restrict,from="{DB_IP}" {public.decode()} db-backup@pyinfra-hardening\n'
    assert backups.authorized_keys((DB_IP,)) == line


def small_rsa_public_key(path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return str(path)


@pytest.mark.parametrize(
    "db_data, key, explanation",
    [
        ({"private_ip": None}, "private_ip", "MariaDB listens only on the private address"),
        ({"backup_public_key": "nowhere.pem"}, "backup_public_key", "is not a file on this machine"),
        ({"backup_public_key": None}, "backup_public_key", "is not set"),
        ({"backup_public_key": "PRIVATE"}, "backup_public_key", "is a PRIVATE key"),
        ({"backup_public_key": "SMALL"}, "backup_public_key", "at least 3072 bits"),
        ({"backup_time": "24:00"}, "backup_time", "'HH:MM'"),
        ({"backup_time": "1:00"}, "backup_time", "'HH:MM'"),
        ({"backup_keep": 0}, "backup_keep", "from 1 to 1000"),
        ({"app_database": "app-db"}, "app_database", "A-Z a-z 0-9 _"),
        ({"app_database_user": "root"}, "app_database_user", "MariaDB's or this project's own accounts"),
    ],
)
def test_bad_database_data_is_refused_with_the_fix(fleet, tmp_path, backup_key_pair, db_data, key, explanation):
    if db_data.get("backup_public_key") == "PRIVATE":
        db_data = {"backup_public_key": str(backup_key_pair[0])}
    elif db_data.get("backup_public_key") == "SMALL":
        db_data = {"backup_public_key": small_rsa_public_key(tmp_path / "small.pem")}
    message = refusal(fleet(db1=db_data))
    assert f"host db1: {key} = " in message and explanation in message
    assert "fix:" in message


def test_a_backup_server_needs_the_address_the_backups_are_copied_to(fleet):
    message = refusal(fleet(backup1={"private_ip": None}))
    assert (
        "host backup1: private_ip = None is not set, but the database servers and session stores copy backups to it"
        in message
    )


def test_without_backups_no_key_is_needed(fleet):
    db = validate_inventory(fleet(db1={"backups": False, "backup_public_key": None}))["db1"]
    assert backups.backups_of(db) is None and database.database_of(db).name == "application"


# --- SQL -----------------------------------------------------------------------------------------


def app_account(hashed: str, privileges=database.APP_PRIVILEGES, schema="application", access=0, ssl_type=2) -> tuple:
    """The application's account as MariaDB reports it; ssl_type 2 is REQUIRE X509."""
    priv = {
        "access": access,
        "plugin": "mysql_native_password",
        "authentication_string": hashed,
        "ssl_type": ssl_type,
        "x509_subject": "",
    }
    grants = {(schema, privilege, "NO") for privilege in privileges}
    return priv, grants


def state_with(accounts: dict, schema_privileges: dict | None = None, databases=("application",)) -> MariadbState:
    root = {
        ("root", "localhost"): {
            "plugin": "mysql_native_password",
            "authentication_string": "invalid",
            "auth_or": [{}, {"plugin": "unix_socket"}],
        }
    }
    return MariadbState(
        accounts={**root, **accounts}, schema_privileges=schema_privileges or {}, databases=set(databases)
    )


def settings_database(app_hosts=(APP_IP,)):
    return database.Database(3306, DB_IP, "application", "application", app_hosts)


def test_the_password_hash_is_mariadbs():
    # What SELECT PASSWORD('password') returns on MariaDB 10.11 and 11.8
    assert database.password_hash(Secret("password", "test")) == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"


def test_a_database_that_is_as_configured_gets_no_sql():
    hashed = database.password_hash(PASSWORD)
    priv, grants = app_account(hashed)
    state = state_with({("application", APP_IP): priv}, {f"'application'@'{APP_IP}'": grants})
    assert database.desired_statements(state, settings_database(), PASSWORD, None) == []


def test_a_fresh_server_gets_the_database_and_one_account_per_app_server():
    statements = database.desired_statements(
        state_with({}, databases=()), settings_database((APP_IP, OTHER_APP_IP)), PASSWORD, None
    )
    assert statements[0] == "CREATE DATABASE `application` CHARACTER SET utf8mb4;"
    grants = [statement for statement in statements if statement.startswith("GRANT")]
    assert grants == [
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON `application`.* TO 'application'@'{ip}';"
        for ip in (APP_IP, OTHER_APP_IP)
    ]
    assert not any(PASSWORD.reveal() in statement for statement in statements)


@pytest.mark.parametrize(
    "drift", ["password", "privilege", "global", "grant option", "other grants", "plain TLS", "no TLS"]
)
def test_an_account_that_drifted_is_made_again(drift):
    hashed = database.password_hash(PASSWORD)
    priv, grants = app_account(
        "*0000" if drift == "password" else hashed,
        access=1 if drift == "global" else 0,
        ssl_type={"plain TLS": 1, "no TLS": 0}.get(drift, 2),
    )
    if drift == "privilege":
        grants |= {("application", "DROP", "NO")}
    if drift == "grant option":
        grants = {(schema, privilege, "YES") for schema, privilege, _ in grants}
    grantee = f"'application'@'{APP_IP}'"
    state = state_with({("application", APP_IP): priv}, {grantee: grants})
    if drift == "other grants":
        state.other_privileges.add(grantee)
    statements = database.desired_statements(state, settings_database(), PASSWORD, None)
    assert statements[:2] == [
        f"DROP USER IF EXISTS {grantee};",
        f"CREATE USER {grantee} IDENTIFIED BY PASSWORD '{hashed}' REQUIRE X509;",
    ]


def test_accounts_of_app_servers_gone_from_the_inventory_are_dropped():
    hashed = database.password_hash(PASSWORD)
    priv, grants = app_account(hashed)
    state = state_with(
        {("application", APP_IP): priv, ("application", OTHER_APP_IP): priv},
        {f"'application'@'{APP_IP}'": grants, f"'application'@'{OTHER_APP_IP}'": grants},
    )
    assert database.desired_statements(state, settings_database(), PASSWORD, None) == [
        f"DROP USER 'application'@'{OTHER_APP_IP}';"
    ]


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
    host = validate_inventory(fleet(backup1={"ssh_allow_users": ["alice"]}))["backup1"]
    settings = settings_for(host, ssh.SshSettings)
    text = ssh.render_drop_in(settings, None, "alice", True, [backups.sshd_match_block()], admin_group="sudo")
    assert "AllowUsers alice db-backup" in text
    block = text.split("Match User db-backup", 1)[1]
    assert "AuthenticationMethods publickey\n" in block and "ChrootDirectory /srv/db-backups" in block
    assert "ForceCommand internal-sftp -d /incoming -u 0577 -p open,close,write," in block
    assert "read," not in block and "remove" not in block and "readdir" not in block


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
    assert "host backup1: offsite_backup_keep = 30 needs the key in" in message


def test_without_database_servers_the_drop_box_accepts_no_key(tmp_path):
    admins = [{"name": "alice", "ssh_keys": [make_key(tmp_path / "alice", "alice@test")]}]
    inventory = Inventory(
        ([("backup1", {"private_ip": BACKUP_IP})], {"admin_users": admins, "login_alerts": False}),
        backup_servers=(["backup1"], {}),
    )
    validate_inventory(inventory)
    assert "ssh-ed25519" not in backups.authorized_keys(())


# --- what each host backs up ----------------------------------------------------------------------


@pytest.fixture
def stores(tmp_path):
    """db1 (also a session store), cache1 and backup1; keyword arguments add host data."""
    admins = [{"name": "alice", "ssh_keys": [make_key(tmp_path / "alice", "alice@test")]}]

    def build(**extra) -> Inventory:
        addresses = {"app1": APP_IP, "db1": DB_IP, "cache1": "10.0.0.41", "backup1": BACKUP_IP}
        hosts = [(name, {"private_ip": ip, **extra.get(name, {})}) for name, ip in addresses.items()]
        return Inventory(
            (hosts, {"admin_users": admins, "login_alerts": False}),
            app_servers=(["app1"], {}),
            db_servers=(["db1"], {}),
            cache_servers=(["db1", "cache1"], {}),
            backup_servers=(["backup1"], {}),
        )

    return build


def test_a_session_store_backs_up_its_data_only_when_it_keeps_it_on_disk(stores):
    hosts = validate_inventory(stores(db1={"redis_persistence": "aof"}, cache1={"redis_persistence": "none"}))
    parts = backups.backups_of(hosts["db1"]).parts
    assert [(part.source, part.kind) for part in parts] == [("db1", backups.SQL), ("db1.redis", backups.RDB)]
    assert parts[1].command == "/usr/local/sbin/redis-admin --rdb -"
    assert backups.backups_of(hosts["cache1"]) is None
    # The drop box takes backups from every database server and session store.
    assert backups.backup_sources(hosts["backup1"].inventory) == (DB_IP, "10.0.0.41")


def test_a_snapshot_needs_the_commands_redis_cli_takes_it_with(stores):
    message = refusal(stores(cache1={"redis_persistence": "rdb", "redis_disabled_commands": ["flushall", "sync"]}))
    assert "host cache1: redis_disabled_commands = ['flushall', 'sync'] disables sync, which the nightly" in message
    assert "fix: keep sync, psync and replconf, or set backups = False" in message
    # Without persistence there is nothing to back up, and no backup key is needed either.
    hosts = validate_inventory(
        stores(cache1={"redis_disabled_commands": ["sync"], "backup_public_key": None}, db1={"backups": False})
    )
    assert backups.backups_of(hosts["cache1"]) is None
