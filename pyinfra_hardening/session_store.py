"""The session store: Redis on a cache server, held to every row of the Redis security checklist
that applies to a standalone server. TLS only (no plaintext port) with a client certificate from
the fleet CA, on the private address only, admitted by the firewall from the app servers only;
users from an external ACL file with hashed passwords, the default user off, the application's
user limited to its key patterns without dangerous or admin commands, and an admin user whose
password exists only in the operator's store and in a root-only file on the host.

The users are compared with what Redis reports (``ACL LIST``) and only the differences are
applied, live, without a restart; a config or ACL candidate is loaded by a throwaway
``redis-server`` on a private socket before it may replace the live file.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, StringConstraints, field_validator
from pyinfra import host, logger
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from . import access_rules, compat, fleet, fleet_tls, secret_store, services
from .data_types import HostSettings, Port, described, one_of
from .database import TLS12_CIPHERS, DatabaseSettings, no_login_shell, random_password
from .managed_files import CONFIG_DIR, directory, render, staged_statements, validated_file
from .packages import ensure_packages
from .services import InContainer
from .settings import Problem, settings_for, stored, validated

if TYPE_CHECKING:
    from pyinfra.api.host import Host

SERVICE = "redis-server"
CONFIG = "/etc/redis/redis.conf"  # Debian's unit starts redis-server with this file
ACL_FILE = "/etc/redis/users.acl"
# In Debian's /etc/redis (redis's, nothing for others), beside the config.
SERVER_KEY, SERVER_CERTIFICATE = "/etc/redis/server.key", "/etc/redis/server.pem"
SOCKET = "/run/redis/redis-server.sock"  # root's way in, for the admin user
DATA_DIR = "/var/lib/redis"
LOG_FILE = "/var/log/redis/redis-server.log"  # Debian's logrotate rule rotates it weekly
UNIT_DROP_IN = "/etc/systemd/system/redis-server.service.d/pyinfra-hardening.conf"
# The admin user's password on the host, outside /etc/redis (which the redis group may write).
ADMIN_PASSWORD_FILE = f"{CONFIG_DIR}/redis-admin.password"
ADMIN_CLI = "/usr/local/sbin/redis-admin"
CHECKER = "/usr/local/lib/pyinfra-hardening/redis-check"
RESTORE_SCRIPT = "/usr/local/sbin/redis-restore"  # a snapshot from the backups, loaded (persistence only)
ADMIN_USER = "admin"
APP_REDIS_PASSWORD = "app-redis-password"
REDIS_ADMIN_PASSWORD = "redis-admin-password"
# In diffs and staged commands, what stands for a password: its SHA-256 in an ACL rule.
PASSWORD_HASH_SECRET = r"#([0-9a-f]{64})"
STAGED_COMMANDS = "/root/.pyinfra-hardening.redis"
# TLS 1.3's suites, strongest first (the checklist's list); 1.2's are the database's ECDSA ones.
TLS13_SUITES = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
# How each persistence choice is spelled in redis.conf.
PERSISTENCE = {
    "none": {"save": '""', "appendonly": "no"},
    "rdb": {"save": "3600 1 300 100 60 10000", "appendonly": "no"},
    "aof": {"save": '""', "appendonly": "yes"},
}
# Redis's command categories (ACL CAT on 7.0 and 8.0).
CATEGORIES = frozenset(
    "keyspace read write set sortedset list hash string bitmap hyperloglog geo stream pubsub admin fast slow "
    "blocking dangerous connection transaction scripting".split()
)
# Always last in the application user's rules, so no earlier rule can grant them.
ALWAYS_DENIED = ("-@dangerous", "-@admin")
# Commands that cannot be disabled: clients could not log in, or the deploy could not manage users.
NEEDED_COMMANDS = frozenset({"acl", "auth", "hello"})

RedisUserName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$"),
    described("must be a Redis user name: a lowercase letter, then up to 31 of a-z 0-9 _ -"),
]
KeyPattern = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_:.*?{}\[\]/-]{1,128}$"),
    described("must be a key pattern of A-Z a-z 0-9 _ : . * ? { } [ ] / - (no spaces or quotes), like 'session:*'"),
]
CommandRule = Annotated[
    str,
    StringConstraints(pattern=r"^[+-](@[a-z]+|[a-z][a-z-]*(\|[a-z][a-z-]*)?)$"),
    described("must be an ACL command rule like '+@read', '-@scripting', '+get' or '-client|kill'"),
]
CommandName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z-]*$"),
    described("must be a lowercase Redis command name like 'flushall'"),
]


class SessionStoreSettings(HostSettings):
    title = "Session store"
    group = "cache_servers"

    redis_port: Port = Field(
        6379,
        description="Redis's TLS port on the private address (there is no plaintext port); only the app "
        "servers' private addresses may reach it",
    )
    redis_tls_protocols: Annotated[str, one_of("TLSv1.3", "TLSv1.2 TLSv1.3")] = Field(
        "TLSv1.3",
        description="TLS versions Redis accepts: 'TLSv1.3', or 'TLSv1.2 TLSv1.3' for clients without 1.3 "
        "(1.2 with ECDHE-ECDSA AEAD suites only)",
    )
    redis_persistence: Annotated[str, one_of(*PERSISTENCE)] = Field(
        "none",
        description="how Redis keeps data across restarts: 'none' (sessions live in memory only: no user data at "
        "rest), 'rdb' (snapshots) or 'aof' (an append-only log), in /var/lib/redis (750)",
    )
    redis_app_user: RedisUserName = Field(
        "application",
        description="the application's Redis user; its password is generated into the secret store and "
        "delivered in the app servers' production config; never 'default' or 'admin'",
    )
    redis_app_keys: Annotated[list[KeyPattern], described("must be a list of key patterns like ['session:*']")] = Field(
        ["session:*"],
        description="the only keys the application's user may touch (ACL key patterns); at least one, and "
        "never '*' alone",
    )
    redis_app_commands: Annotated[
        list[CommandRule], described("must be a list of ACL command rules like ['+@read', '+@write']")
    ] = Field(
        ["+@read", "+@write", "+@keyspace", "+@connection", "+@transaction", "-@scripting"],
        description="what the application's user may run, after '-@all' and before '-@dangerous -@admin' "
        "(which always come last: FLUSHALL, KEYS, CONFIG, DEBUG, MIGRATE, ACL ... stay refused); no "
        "pub/sub channels",
    )
    redis_disabled_commands: Annotated[
        list[CommandName], described("must be a list of lowercase command names like ['flushall']")
    ] = Field(
        ["config"],
        description='commands renamed away for every user, the admin too (rename-command NAME ""); acl, auth '
        "and hello must stay. CONFIG by default: settings change through data and a run, never live "
        "(the Redis checklist: disable commands nobody needs)",
    )

    @property
    def keeps_data(self) -> bool:
        """Whether Redis keeps its data on disk (and so in the nightly backup)."""
        return self.redis_persistence != "none"

    @field_validator("redis_app_user")
    @classmethod
    def _not_a_reserved_user(cls, name: str) -> str:
        if name in ("default", ADMIN_USER):
            raise ValueError(f"is Redis's default user or the admin user ({ADMIN_USER})")
        return name

    @field_validator("redis_app_keys")
    @classmethod
    def _narrow_keys(cls, patterns: list[str]) -> list[str]:
        if not patterns:
            raise ValueError("is empty, so the application could use no key")
        if "*" in patterns:
            raise ValueError("has '*', every key: the application's user would not be limited to its own")
        return patterns

    @field_validator("redis_app_commands")
    @classmethod
    def _no_dangerous_grants(cls, rules: list[str]) -> list[str]:
        for rule in rules:
            category = rule[2:] if rule[1] == "@" else None
            if category is not None and category != "all" and category not in CATEGORIES:
                known = ", ".join(sorted(CATEGORIES))
                raise ValueError(f"has {rule!r}, which is not a Redis command category ({known})")
            if rule in ("+@all", "+@dangerous", "+@admin"):
                raise ValueError(f"has {rule!r}: the application's user never gets dangerous or admin commands")
        return rules

    @field_validator("redis_disabled_commands")
    @classmethod
    def _needed_commands_stay(cls, names: list[str]) -> list[str]:
        needed = sorted(set(names) & NEEDED_COMMANDS)
        if needed:
            raise ValueError(
                f"disables {', '.join(needed)}, which clients need to log in and the deploy to manage users"
            )
        return names

    def problems(self, host: Host) -> list[Problem]:
        problems = access_rules.needs_private_ip(host, "Redis listens only on the private address")
        problems += validated(host, fleet_tls.FleetTlsSettings)[1]  # the server certificate's CA
        stored(host, APP_REDIS_PASSWORD, "redis_app_user", self.redis_app_user, problems)
        stored(host, REDIS_ADMIN_PASSWORD, "redis_app_user", self.redis_app_user, problems)
        if fleet.DB_SERVERS in host.groups:
            database = validated(host, DatabaseSettings, in_use=False)[0]
            if database is not None and database.database_port == self.redis_port:
                problems.append(
                    Problem(
                        host.name,
                        "redis_port",
                        self.redis_port,
                        "is this host's database port too (database_port)",
                        "give Redis and MariaDB ports of their own",
                    )
                )
        return problems


def password_hash(password: str) -> str:
    """An ACL password as Redis stores it: ``#`` and the SHA-256 of the clear text."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def acl_lines(settings: SessionStoreSettings, app_password: str, admin_password: str) -> dict[str, str]:
    """The users of the ACL file, by name: the default user off with no rights, the admin with all
    (its password is on this host alone), the application's user with its keys and commands."""
    keys = " ".join(f"~{pattern}" for pattern in settings.redis_app_keys)
    commands = " ".join(("-@all", *settings.redis_app_commands, *ALWAYS_DENIED))
    # sanitize-payload (RESTORE payloads are checked) is Redis's default, spelled out: Redis 7.0
    # lists it for a user set with `reset` but not for one loaded without it.
    return {
        "default": "user default off sanitize-payload resetkeys resetchannels -@all",
        ADMIN_USER: f"user {ADMIN_USER} on sanitize-payload {password_hash(admin_password)} ~* &* +@all",
        settings.redis_app_user: (
            f"user {settings.redis_app_user} on sanitize-payload {password_hash(app_password)} {keys} "
            f"resetchannels {commands}"
        ),
    }


def acl_file_text(users: dict[str, str]) -> str:
    return "".join(f"{line}\n" for line in users.values())


def server_config(settings: SessionStoreSettings, bind_address: str) -> str:
    return render(
        CONFIG,
        bind_address=bind_address,
        port=settings.redis_port,
        socket=SOCKET,
        certificate=SERVER_CERTIFICATE,
        key=SERVER_KEY,
        ca=fleet_tls.TRUST_BUNDLE,
        protocols=settings.redis_tls_protocols,
        ciphers=TLS12_CIPHERS,
        suites=TLS13_SUITES,
        acl_file=ACL_FILE,
        data_dir=DATA_DIR,
        log_file=LOG_FILE,
        persistence=PERSISTENCE[settings.redis_persistence],
        disabled_commands=settings.redis_disabled_commands,
    )


# --- what Redis reports --------------------------------------------------------------------------


@dataclass
class RedisUsers:
    """The users as the running server has them (``ACL LIST``), as the ACL file on disk words them,
    and as Redis words that file (loaded by a throwaway server): Redis rewrites rules its own way,
    so live users are compared with Redis's reading of the file, and the data with its words."""

    live: dict[str, str] | None  # None: the admin user could not log in
    written: dict[str, str] = field(default_factory=dict)
    read: dict[str, str] | None = None  # None: the file did not load


def users_by_name(lines: list[str]) -> dict[str, str]:
    return {line.split()[1]: line for line in lines if line.startswith("user ") and len(line.split()) > 1}


class RedisAcl(FactBase["RedisUsers | None"]):
    """Redis's users, live and in the ACL file (as ``redis-check users`` prints them); None when
    this project's Redis is not running here yet."""

    def command(self) -> str:
        return f"test -x {CHECKER} && systemctl is-active -q {SERVICE} || exit 0; {CHECKER} users"

    def process(self, output: list[str]) -> RedisUsers | None:
        if not output:
            return None
        sections: dict[str, list[str]] = {"live": [], "written": [], "read": []}
        unreadable = set()
        for line in output:
            section, _, rest = line.partition(" ")
            if section in sections:
                sections[section].append(rest)
            elif section.endswith("-unreadable"):
                unreadable.add(section.removesuffix("-unreadable"))
        return RedisUsers(
            None if "live" in unreadable else users_by_name(sections["live"]),
            users_by_name(sections["written"]),
            None if "read" in unreadable else users_by_name(sections["read"]),
        )


def same_rules(line: str | None, other: str | None) -> bool:
    """Whether two of Redis's descriptions of a user say the same: Redis 7.0 lists a user's
    single-command rules in no fixed order, so the words are compared, not their order."""
    return line is not None and other is not None and sorted(line.split()) == sorted(other.split())


def user_commands(current: RedisUsers, wanted: dict[str, str]) -> list[str]:
    """``redis-cli`` lines that make the live users ``wanted`` (the ACL file's new lines): a user
    is set again when its line in the data changed, or when Redis has it otherwise than it reads
    the file (changed by hand); a live user the data does not name is deleted. The admin comes
    last, so the commands before it run as the admin they logged in as."""
    live = current.live or {}
    read = current.read or {}
    changed = [
        name
        for name, line in wanted.items()
        if current.written.get(name) != line or not same_rules(live.get(name), read.get(name))
    ]
    commands = [f"ACL DELUSER {name}" for name in sorted(live) if name not in wanted]
    commands += [
        " ".join(["ACL SETUSER", name, "reset", *wanted[name].split()[2:]])
        for name in sorted(changed, key=lambda name: name == ADMIN_USER)
    ]
    return commands


@compat.announces_reads(lambda **_: [(RedisAcl, {})], secret=True)  # password hashes
@operation()
def acl_users(users: dict[str, str]) -> Any:
    """
    Make Redis's live users those of the ACL file: only the users that differ are set again,
    users the data no longer names are deleted, and Redis keeps running (its clients stay
    connected). When the admin user cannot log in, Redis is restarted to read the file.

    + users: the ACL file's lines, by user name (``acl_lines``)
    """
    with compat.fact_output_unprinted():
        current = host.get_fact(RedisAcl)
    if current is None:
        host.noop("Redis is not running this project's config yet: it reads the ACL file as it starts")
        return
    if current.live is None:
        host.log(f"The {ADMIN_USER} user cannot log in to Redis: it is restarted to read {ACL_FILE}", logger.warning)
        yield StringCommand(f"systemctl restart {SERVICE}")
        return
    commands = user_commands(current, users)
    if not commands:
        host.noop("Redis's users are those of the ACL file")
        return
    yield from staged_statements("Redis", commands, STAGED_COMMANDS, PASSWORD_HASH_SECRET)
    # redis-cli answers each line; an error reply fails the operation (without echoing the rules).
    yield StringCommand(
        f"replies=$({ADMIN_CLI} < {STAGED_COMMANDS}); status=$?; rm -f {STAGED_COMMANDS}; "
        f'[ $status -eq 0 ] && ! printf "%s\\n" "$replies" | grep -q "ERR\\|NOPERM\\|NOAUTH\\|WRONGPASS" || '
        '{ echo "hardening: Redis refused a user change" >&2; exit 1; }'
    )


# --- the deploy ----------------------------------------------------------------------------------


def passwords() -> tuple[str, str]:
    """The application's and the admin's Redis passwords (generated into the store on apply)."""
    executing = compat.executing()
    return (
        secret_store.generated(APP_REDIS_PASSWORD, random_password, executing).reveal(),
        secret_store.generated(REDIS_ADMIN_PASSWORD, random_password, executing).reveal(),
    )


@deploy("Redis session store")
def redis() -> None:
    """
    Redis for the application's sessions: TLS only on ``private_ip:redis_port`` with client
    certificates from the fleet CA, protected mode on, users from an external ACL file (the
    application's and a local admin's, passwords hashed, the default user off), debug, module
    and protected-config commands off, files private to the redis user, a rotated log file and
    ``redis_persistence``. Every candidate file must load in a throwaway server before it lands.

    Example:

    .. code:: python

        from pyinfra_hardening import session_store
        session_store.redis()
    """
    settings = settings_for(host, SessionStoreSettings)
    bind_address = settings_for(host, fleet.FleetSettings).private_ip
    assert bind_address is not None  # SessionStoreSettings.problems() refuses a host without one
    for folder in (posixpath.dirname(UNIT_DROP_IN), posixpath.dirname(CHECKER)):
        directory(name=f"{folder} exists", path=folder, mode="755")
    in_container = host.get_fact(InContainer)
    # Before the package: its first start (and the restarts of a failing one) would otherwise
    # run without it, and a container's failed starts use up systemd's start limit.
    drop_in = validated_file(
        name="Redis's unit runs in this container" if in_container else "Redis's unit as Debian hardened it",
        dest=UNIT_DROP_IN,
        content=render(UNIT_DROP_IN, in_container=in_container),
        validator=None,
    )
    systemd.daemon_reload(name="systemd reads Redis's unit", _if=any_changed(drop_in))
    ensure_packages("Install Redis (and logrotate, which rotates its log)", [SERVICE, "logrotate"])
    no_login_shell(name="The redis account has no login shell", user="redis")
    # Nothing of Redis's is others' (the checklist): the leaf is redis's alone too.
    tls = fleet_tls.host_certificate(SERVER_KEY, SERVER_CERTIFICATE, "redis", bind_address, certificate_mode="400")
    validated_file(
        name="The check a Redis config or ACL file must pass",
        dest=CHECKER,
        content=render(CHECKER, admin_cli=ADMIN_CLI, acl_file=ACL_FILE, password_file=ADMIN_PASSWORD_FILE),
        validator="sh -n {}",
        mode="755",
    )
    validated_file(
        name=f"{ADMIN_CLI}: redis-cli as the {ADMIN_USER} user, for root on this host",
        dest=ADMIN_CLI,
        content=render(ADMIN_CLI, user=ADMIN_USER, socket=SOCKET, password_file=ADMIN_PASSWORD_FILE),
        validator="sh -n {}",
        mode="700",
    )

    def users() -> dict[str, str]:
        return acl_lines(settings, *passwords())

    validated_file(
        name="Redis's users, passwords hashed (ACL file)",
        dest=ACL_FILE,
        content=lambda: acl_file_text(users()),
        validator=f"{CHECKER} acl {{}}",
        user="redis",
        group="redis",
        mode="640",
        secret_pattern=PASSWORD_HASH_SECRET,
    )
    config = validated_file(
        name=f"Redis takes TLS only, on {bind_address}:{settings.redis_port}",
        dest=CONFIG,
        content=server_config(settings, bind_address),
        validator=f"{CHECKER} config {{}}",
        user="redis",
        group="redis",
        mode="640",
    )
    services.unit_running(name="Redis runs", unit=SERVICE)
    restart = systemd.service(
        name="Restart Redis (new config, unit or certificate)",
        service=SERVICE,
        restarted=True,
        _if=any_changed(config, drop_in, *tls),
    )
    # Before the admin's password file changes: these commands log in with the password Redis has.
    acl_users(name="Redis's live users are those of the ACL file", users=users(), _if=restart.did_not_change)
    directory(name=f"{CONFIG_DIR} exists", path=CONFIG_DIR, mode="755")  # its files are root's alone
    validated_file(
        name=f"The Redis {ADMIN_USER} user's password, root's alone (secret)",
        dest=ADMIN_PASSWORD_FILE,
        content=lambda: passwords()[1] + "\n",
        validator=None,
        mode="400",
        secret_pattern=r"(?s)^(.+)$",
    )
    directory(name=f"{DATA_DIR} is private to redis", path=DATA_DIR, user="redis", group="redis", mode="750")
    if settings.keeps_data:
        validated_file(
            name=f"{RESTORE_SCRIPT}: a snapshot from the backups, checked, then in place of the data",
            dest=RESTORE_SCRIPT,
            content=render(
                RESTORE_SCRIPT,
                data_dir=DATA_DIR,
                checker=CHECKER,
                service=SERVICE,
                aof=settings.redis_persistence == "aof",
            ),
            validator="sh -n {}",
            mode="700",
        )
