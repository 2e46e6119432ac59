"""The database server (guide 3.11.1 and 4.6): MariaDB on the private address only, its files
private to the mysql user, root only through the local socket, no anonymous accounts or test
database, and the application's account limited to its own data and the app servers.

The accounts are compared with what MariaDB reports (``mysql.global_priv`` and the
information_schema privilege tables); SQL runs only for what differs. Passwords travel as
MariaDB password hashes, through an owner-only file, never on a command line.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field
from secrets import token_urlsafe
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator
from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.operations import server, systemd
from pyinfra.operations.util import any_changed

from . import access_rules, compat, fleet, fleet_tls, secret_store, services
from .data_types import HostSettings, Port, SqlName, refuse
from .managed_files import directory, render, staged_statements, validated_file
from .packages import ensure_packages
from .secret_store import Secret
from .settings import Problem, settings_for, stored

if TYPE_CHECKING:
    from pyinfra.api.host import Host

SERVER_CONFIG = "/etc/mysql/mariadb.conf.d/99-hardening.cnf"  # read last of the drop-ins: its values win
SQL_STAGING = "/root/.pyinfra-hardening.sql"
APP_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
# The backup's dump account: what mariadb-dump needs to read tables, views and triggers.
DUMP_ACCOUNT = ("backup_dump", "localhost")
DUMP_PRIVILEGES = ("SELECT", "LOCK TABLES", "SHOW VIEW", "TRIGGER")
# Schemas MariaDB keeps for itself (and `test`, which the hardening drops), and accounts it or
# this project use: never the application's.
SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys", "test"})
SYSTEM_DATABASE_ACCOUNTS = frozenset({"root", "mysql", "mariadb.sys", "public", "debian-sys-maint", DUMP_ACCOUNT[0]})
NO_LOGIN_SHELLS = ("/bin/false", "/usr/sbin/nologin", "/sbin/nologin")
# Authentication strings that let no password in: Debian's root@localhost has "invalid".
NO_PASSWORD = ("invalid", "")
PASSWORD_HASH_SECRET = r"PASSWORD '([^']*)'"
# mysql.global_priv's ssl_type for REQUIRE X509: a client certificate a CA in ssl_ca signed.
SSL_TYPE_X509 = 2
# The server's TLS files: the key is made on this host and readable by mysql alone.
TLS_DIR = "/etc/mysql/tls"
SERVER_KEY, SERVER_CERTIFICATE = f"{TLS_DIR}/server.key", f"{TLS_DIR}/server.pem"
# TLS 1.2 suites for an ECDSA key with forward secrecy and AEAD (Mozilla's "intermediate" list,
# ECDSA half); TLS 1.3's suites are all strong and stay OpenSSL's.
TLS12_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"


APP_DATABASE_PASSWORD = "app-database-password"
BACKUP_DUMP_PASSWORD = "backup-dump-password"


class DatabaseSettings(HostSettings):
    title = "Database"
    group = "db_servers"

    database_port: Port = Field(
        3306,
        description="the database's TCP port; only the app servers' private addresses may reach it (guide 3.11)",
    )
    app_database: SqlName = Field(
        "application",
        description="the application's database (guide 4.6); never one of MariaDB's own (mysql, sys, ...) or test",
    )
    app_database_user: SqlName = Field(
        "application",
        description="its account: SELECT, INSERT, UPDATE, DELETE there, from app servers only (4.6); "
        "never root, mysql or backup_dump",
    )

    @field_validator("app_database")
    @classmethod
    def _not_a_system_schema(cls, name: str) -> str:
        if name.lower() in SYSTEM_SCHEMAS:
            raise refuse(
                "app_database",
                "is one of MariaDB's own schemas (or test, which is dropped): the application would own it",
                "give the application a database of its own, like 'application'",
            )
        return name

    @field_validator("app_database_user")
    @classmethod
    def _not_a_system_account(cls, name: str) -> str:
        if name.lower() in SYSTEM_DATABASE_ACCOUNTS:
            raise refuse(
                "app_database_user",
                "is one of MariaDB's or this project's own accounts",
                "give the application an account of its own, like 'application'",
            )
        return name

    def problems(self, host: Host) -> list[Problem]:
        problems = access_rules.needs_private_ip(host, "MariaDB listens only on the private address")
        stored(host, APP_DATABASE_PASSWORD, "app_database_user", self.app_database_user, problems)
        return problems


def random_password() -> str:
    return token_urlsafe(24)


@dataclass(frozen=True)
class Database:
    """MariaDB on a database server, and the application's account (guide 3.11.1, 4.6)."""

    port: int
    bind_address: str  # the host's private address, never 0.0.0.0
    name: str
    user: str
    app_hosts: tuple[str, ...]  # the app servers' private addresses: where the account may connect from


def database_of(host: Host) -> Database:
    settings = settings_for(host, DatabaseSettings)
    bind_address = settings_for(host, fleet.FleetSettings).private_ip
    assert bind_address is not None  # DatabaseSettings.problems() refuses a host without one
    return Database(
        settings.database_port,
        bind_address,
        settings.app_database,
        settings.app_database_user,
        fleet.private_ips(host.inventory, fleet.APP_SERVERS),
    )


def config_validator(bind_address: str) -> str:
    """MariaDB reads the candidate as the last option file: it must parse, and bind where asked."""
    effective = f"bind-address +{bind_address.replace('.', '[.]')}"
    # An option mariadbd rejects prints nothing to stdout (its error goes to stderr), so grep fails too.
    return "mariadbd --defaults-extra-file={} --help --verbose | grep -Eqx " + shlex.quote(effective)


def password_hash(password: Secret) -> str:
    """MariaDB's mysql_native_password hash, what ``PASSWORD('...')`` returns."""
    inner = hashlib.sha1(password.reveal().encode()).digest()
    return "*" + hashlib.sha1(inner).hexdigest().upper()


def quoted(text: str) -> str:
    """A SQL string literal; names are checked to A-Z a-z 0-9 _ and addresses are IPs."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def account(user: str, host_name: str) -> str:
    return f"{quoted(user)}@{quoted(host_name)}"


def schema_pattern(database: str) -> str:
    """A database name as GRANT reads it: ``_`` is a wildcard there unless escaped."""
    return database.replace("_", "\\_")


# --- what MariaDB reports ------------------------------------------------------------------------

STATE_QUERY = " ".join(
    (
        "SELECT 'account', User, Host, Priv FROM mysql.global_priv;",
        "SELECT 'schema', GRANTEE, TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE "
        "FROM information_schema.SCHEMA_PRIVILEGES;",
        "SELECT 'other', GRANTEE FROM information_schema.TABLE_PRIVILEGES;",
        "SELECT 'other', GRANTEE FROM information_schema.COLUMN_PRIVILEGES;",
        "SELECT 'other', CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.procs_priv;",
        "SELECT 'other', CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.roles_mapping;",
        "SELECT 'database', SCHEMA_NAME FROM information_schema.SCHEMATA;",
        "SELECT 'test-grant', Db, User, Host FROM mysql.db WHERE Db LIKE 'test%';",
    )
)


@dataclass
class MariadbState:
    accounts: dict[tuple[str, str], dict] = field(default_factory=dict)  # (user, host) -> Priv JSON
    schema_privileges: dict[str, set] = field(default_factory=dict)  # grantee -> {(schema, privilege, grantable)}
    other_privileges: set = field(default_factory=set)  # grantees with table, column, routine or role grants
    databases: set = field(default_factory=set)
    test_grants: list = field(default_factory=list)


class Mariadb(FactBase[MariadbState | None]):
    """Accounts, privileges and databases, read as root over the local socket; None when MariaDB
    is not installed or not running yet."""

    def command(self) -> str:
        return (
            "command -v mariadb >/dev/null && systemctl is-active -q mariadb || exit 0; "
            f"mariadb --batch --skip-column-names -e {shlex.quote(STATE_QUERY)}"
        )

    def process(self, output: list[str]) -> MariadbState | None:
        if not output:
            return None
        state = MariadbState()
        for line in output:
            kind, *values = line.split("\t")
            if kind == "account":
                state.accounts[(values[0], values[1])] = json.loads(values[2])
            elif kind == "schema":
                grantee, schema, privilege, grantable = values
                state.schema_privileges.setdefault(grantee, set()).add((schema, privilege, grantable))
            elif kind == "other":
                state.other_privileges.add(values[0])
            elif kind == "database":
                state.databases.add(values[0])
            elif kind == "test-grant":
                state.test_grants.append(tuple(values))
        return state


class MariadbDataDirectory(FactBase[str | None]):
    """The data directory, as the server reads its configuration."""

    def command(self) -> str:
        return (
            "command -v mariadbd >/dev/null || exit 0; "
            "mariadbd --help --verbose 2>/dev/null | awk '$1 == \"datadir\" {print $2}'"
        )

    def process(self, output: list[str]) -> str | None:
        return output[0].strip().rstrip("/") if output and output[0].strip() else None


class LoginShell(FactBase[str | None]):
    """``user``'s login shell; None when there is no such user (pyinfra's Users fact would read
    every password hash to tell)."""

    def command(self, user: str) -> str:
        return f"getent passwd {shlex.quote(user)} | cut -d: -f7"

    def process(self, output: list[str]) -> str | None:
        return output[0].strip() if output and output[0].strip() else None


class NotOwnedBy(FactBase[list[str]]):
    """Up to ten paths under ``path`` whose owner or group is not ``user``."""

    def command(self, path: str, user: str) -> str:
        return f"find {shlex.quote(path)} \\( ! -user {user} -o ! -group {user} \\) -print 2>/dev/null | head -10"

    default = list

    def process(self, output: list[str]) -> list[str]:
        return [line for line in output if line.strip()]


# --- the desired accounts ------------------------------------------------------------------------


def holds_exactly(
    state: MariadbState,
    user: str,
    host_name: str,
    hashed: str,
    database: str,
    privileges: tuple[str, ...],
    x509: bool = False,
) -> bool:
    """Whether the account exists with this password alone, no global privileges, exactly
    ``privileges`` on ``database`` (no grant option, nothing on other tables or routines), and
    (``x509``) only with a client certificate the server's CAs signed."""
    priv = state.accounts.get((user, host_name))
    if not priv:
        return False
    grantee = account(user, host_name)
    wanted = {(schema_pattern(database), privilege, "NO") for privilege in privileges}
    return (
        priv.get("plugin") == "mysql_native_password"
        and priv.get("authentication_string") == hashed
        and not priv.get("auth_or")
        and priv.get("access") == 0
        and state.schema_privileges.get(grantee, set()) == wanted
        and grantee not in state.other_privileges
        and priv.get("ssl_type", 0) == (SSL_TYPE_X509 if x509 else 0)
        and not (priv.get("ssl_cipher") or priv.get("x509_issuer") or priv.get("x509_subject"))
    )


def account_statements(
    state: MariadbState,
    user: str,
    hosts: tuple[str, ...],
    hashed: str,
    database: str,
    privileges: tuple[str, ...],
    x509: bool = False,
) -> list[str]:
    """SQL that leaves ``user`` with exactly one account per host in ``hosts``, as holds_exactly says."""
    statements = [
        f"DROP USER {account(user, other)};"
        for (name, other) in sorted(state.accounts)
        if name == user and other not in hosts
    ]
    for host_name in hosts:
        if holds_exactly(state, user, host_name, hashed, database, privileges, x509):
            continue
        who = account(user, host_name)
        statements += [
            f"DROP USER IF EXISTS {who};",
            f"CREATE USER {who} IDENTIFIED BY PASSWORD {quoted(hashed)}{' REQUIRE X509' if x509 else ''};",
            f"GRANT {', '.join(privileges)} ON `{schema_pattern(database)}`.* TO {who};",
        ]
    return statements


def root_only_through_socket(priv: dict) -> bool:
    methods = [priv, *priv.get("auth_or", [])]
    return all(
        method.get("plugin") == "unix_socket" or method.get("authentication_string", "") in NO_PASSWORD
        for method in methods
        if method
    ) and any(method.get("plugin") == "unix_socket" for method in methods)


def cleanup_statements(state: MariadbState) -> list[str]:
    """The guide's (and mysql_secure_installation's) clean-up: no anonymous accounts, root only
    as root@localhost through the socket, no test database or grants on test databases."""
    statements = []
    for user, host_name in sorted(state.accounts):
        if user == "" or (user == "root" and host_name != "localhost"):
            statements.append(f"DROP USER {account(user, host_name)};")
    root = state.accounts.get(("root", "localhost"))
    if root is not None and not root_only_through_socket(root):
        statements.append("ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket;")
    if "test" in state.databases:
        statements.append("DROP DATABASE `test`;")
    if state.test_grants:
        statements += ["DELETE FROM mysql.db WHERE Db = 'test' OR Db LIKE 'test\\\\_%';", "FLUSH PRIVILEGES;"]
    return statements


def desired_statements(
    state: MariadbState, database: Database, password: Secret, dump_password: Secret | None
) -> list[str]:
    statements = cleanup_statements(state)
    if database.name not in state.databases:
        statements.append(f"CREATE DATABASE `{database.name}` CHARACTER SET utf8mb4;")
    statements += account_statements(
        state, database.user, database.app_hosts, password_hash(password), database.name, APP_PRIVILEGES, x509=True
    )
    # Without backups there is no dump account: none is kept (an earlier one is dropped).
    dump_user, dump_host = DUMP_ACCOUNT
    dump_hosts, dump_hash = ((dump_host,), password_hash(dump_password)) if dump_password else ((), "")
    statements += account_statements(state, dump_user, dump_hosts, dump_hash, database.name, DUMP_PRIVILEGES)
    return statements


# --- operations ----------------------------------------------------------------------------------


@compat.announces_reads(lambda **_: [(Mariadb, {})], secret=True)  # accounts' password hashes
@operation()
def accounts_and_databases(database: Database, dump_account: bool) -> Any:
    """
    Make MariaDB's accounts and databases what the settings say (SQL only for what differs).
    The passwords come from the secret store; one it lacks is generated there on apply.

    + database: the application's database and account
    + dump_account: whether the backup's dump account exists (with backups on)
    """
    with compat.fact_output_unprinted():  # the accounts' password hashes log in as well as the passwords
        current = host.get_fact(Mariadb)
    if current is None:  # MariaDB is being installed in this run: everything is still to do
        current = MariadbState(accounts={("root", "localhost"): {"plugin": "unix_socket"}})
    password = secret_store.generated(APP_DATABASE_PASSWORD, random_password, compat.executing())
    dump_password = (
        secret_store.generated(BACKUP_DUMP_PASSWORD, random_password, compat.executing()) if dump_account else None
    )
    statements = desired_statements(current, database, password, dump_password)
    if not statements:
        host.noop("MariaDB's accounts and databases are as configured")
        return
    yield from staged_statements("MariaDB", statements, SQL_STAGING, PASSWORD_HASH_SECRET)
    yield StringCommand(f"mariadb < {SQL_STAGING}; status=$?; rm -f {SQL_STAGING}; exit $status")


@compat.announces_reads(lambda user, **_: [(LoginShell, {"user": user})])
@operation()
def no_login_shell(user: str) -> Any:
    """
    ``user`` cannot log in: its shell is one that refuses (guide 3.11.1).

    + user: the account
    """
    shell = host.get_fact(LoginShell, user=user)
    if shell is None or shell in NO_LOGIN_SHELLS:
        host.noop(f"{user} has no login shell")
        return
    yield StringCommand("usermod", "-s", "/usr/sbin/nologin", user)


@compat.announces_reads(lambda path, user, **_: [(NotOwnedBy, {"path": path, "user": user})])
@operation()
def owned_by(path: str, user: str) -> Any:
    """
    Everything under ``path`` belongs to ``user`` and its group (recursively, only if needed).

    + path: the directory
    + user: the owner, and the group of the same name
    """
    if not host.get_fact(NotOwnedBy, path=path, user=user):
        host.noop(f"everything in {path} belongs to {user}")
        return
    yield StringCommand(f"chown -R {user}:{user} {shlex.quote(path)}")


@deploy("MariaDB")
def mariadb(dump_account: bool = False) -> None:
    """
    MariaDB on the host's private address only, root through the local socket only, no
    anonymous accounts or test database, the data directory private to mysql, and the
    application's database with its account for each app server in the inventory.

    + dump_account: also keep the backup's read-only dump account (``backups.nightly_backups``)

    Example:

    .. code:: python

        from pyinfra_hardening import database
        database.mariadb()
    """
    database = database_of(host)
    ensure_packages("Install MariaDB", ["mariadb-server"])
    tls = fleet_tls.host_certificate(SERVER_KEY, SERVER_CERTIFICATE, "mysql", database.bind_address)
    config = validated_file(
        name=f"MariaDB listens on {database.bind_address}:{database.port} only, over TLS only",
        dest=SERVER_CONFIG,
        content=render(
            SERVER_CONFIG,
            bind_address=database.bind_address,
            port=database.port,
            ca=fleet_tls.TRUST_BUNDLE,
            certificate=SERVER_CERTIFICATE,
            key=SERVER_KEY,
            ciphers=TLS12_CIPHERS,
        ),
        validator=config_validator(database.bind_address),
    )
    services.unit_running(name="MariaDB runs", unit="mariadb")
    systemd.service(name="Restart MariaDB (new settings)", service="mariadb", restarted=True, _if=any_changed(config))
    # A renewed leaf or a changed trust bundle needs no restart: connections stay up.
    server.shell(
        name="MariaDB loads its new certificate or trusted CAs",
        commands=["mariadb -e 'FLUSH SSL'"],
        _if=[any_changed(*tls), config.did_not_change],
    )

    no_login_shell(name="The mysql account has no login shell", user="mysql")
    datadir = host.get_fact(MariadbDataDirectory) or "/var/lib/mysql"
    owned_by(name=f"Everything in {datadir} belongs to mysql", path=datadir, user="mysql")
    # Mode 700 on the directory closes every file inside to anyone but mysql (and root).
    directory(name=f"{datadir} is private to mysql", path=datadir, user="mysql", group="mysql", mode="700")

    accounts_and_databases(
        name=f"MariaDB: root by socket only, no anonymous or test; {database.user} may only use {database.name}",
        database=database,
        dump_account=dump_account,
    )
