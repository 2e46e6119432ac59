"""Encrypted offsite backups (guide 3.11.2).

On a database server, and on a session store that keeps its data on disk: a root-only script,
run nightly by cron, dumps the application's database (and takes a snapshot of Redis's data),
encrypts each to the operator's RSA public key, keeps the newest N, and copies each new pair to
the backup servers with scp, as a dedicated account, with a key of its own.

On a backup server: that account can only drop files into one directory (SFTP in a chroot, no
reading, listing, renaming or deleting, no shell, only from the database servers and session
stores); what arrives is sealed read-only for root at once and the newest N of each kind from
each host kept. The operator fetches and restores with ``hardening-backup fetch`` and
``restore`` (backup_cli.py).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pydantic import Field
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from . import access_rules, backup_cli, compat, fleet, secret_store, services
from .accounts import locked_system_account
from .data_types import ClockTime, FilePath, Flag, HostSettings, Port, whole_number
from .database import BACKUP_DUMP_PASSWORD, DUMP_ACCOUNT, DatabaseSettings, random_password
from .fleet import CACHE_SERVERS, DB_SERVERS
from .login_alerts import WatchedLog, log_exists
from .managed_files import CONFIG_DIR, directory, render, validated_file
from .packages import ensure_packages
from .secret_store import Secret
from .session_store import ADMIN_CLI, SessionStoreSettings
from .settings import Problem, settings_for, stored, validated
from .ssh import MatchBlock

if TYPE_CHECKING:
    from pyinfra.api.host import Host
    from pyinfra.api.inventory import Inventory

# The side that sends backups (the names predate session stores, and stay for live servers).
BACKUP_SCRIPT = "/usr/local/sbin/db-backup"
BACKUP_CRON = "/etc/cron.d/pyinfra-hardening-db-backup"
BACKUP_DIR = "/var/backups/db-encrypted"
DUMP_OPTIONS = f"{CONFIG_DIR}/backup-dump.cnf"
PUBLIC_KEY = f"{CONFIG_DIR}/backup-public.pem"
SSH_KEY = "/root/.ssh/db-backup_ed25519"
KNOWN_HOSTS = "/root/.ssh/db-backup_known_hosts"
# What each run did, one line each; Monit alerts on a FAILED line (hardening/login_alerts.py).
LOG_FILE = "/var/log/db-backup.log"
DUMP_OPTIONS_SECRET = r'password = "([^"]*)"'
SSH_KEY_SECRET = r"(?s)-----BEGIN OPENSSH PRIVATE KEY-----\n(.*?)\n-----END"

BACKUP_SSH_KEY = "backup-ssh-key"
MIN_BACKUP_KEY_BITS = 3072
# What a backup holds: the archive of a pair is SOURCE_STAMP.KIND.gz.enc.
SQL, RDB = "sql", "rdb"
KINDS = (SQL, RDB)
# What each kind's file names begin with after the host's name: a session store's snapshots are
# named apart from its database's dumps.
SOURCE_SUFFIXES = {SQL: "", RDB: ".redis"}
# What `redis-cli --rdb` sends to take the snapshot: disabling them would stop the backup.
SNAPSHOT_COMMANDS = frozenset({"sync", "psync", "replconf"})
KEYGEN_FIX = (
    "make a key pair on your machine with `hardening-backup keygen --private-key PATH --public-key "
    "keys/backup-public.pem`, keep the private key off the servers, and set backup_public_key to the "
    "public one (or backups = False)"
)

# Backup server side.
ACCOUNT = "db-backup"
CHROOT = "/srv/db-backups"
INCOMING_NAME = "incoming"
INCOMING = f"{CHROOT}/{INCOMING_NAME}"
AUTHORIZED_KEYS = f"/etc/ssh/{ACCOUNT}.authorized_keys"
SEAL_SCRIPT = "/usr/local/sbin/db-backups-seal"
SEAL_UNIT = "db-backups-seal"
# SFTP requests the account may make: create and write files, look up paths. Not read, list,
# rename, remove, link or change attributes other than through an open file.
SFTP_REQUESTS = ("open", "close", "write", "fsetstat", "lstat", "fstat", "stat", "realpath", "limits", "expand-path")
# Files it creates are write-only for it, even before they are sealed.
SFTP_UMASK = "0577"


class BackupSettings(HostSettings):
    title = "Backups"
    group = "all"  # database servers and session stores both send them

    backups: Flag = Field(
        True,
        description="nightly encrypted backup of the application's database (db_servers) and of Redis's data "
        "(cache_servers whose redis_persistence is not 'none'), copied to the backup servers (guide 3.11.2)",
    )
    backup_public_key: FilePath | None = Field(
        "keys/backup-public.pem",
        description="your RSA public key backups are encrypted to (hardening-backup keygen)",
    )
    backup_time: ClockTime = Field(
        "00:01",
        description="when the nightly backup runs, server time (guide 3.11.2)",
    )
    backup_keep: Annotated[int, whole_number(1, 1000)] = Field(
        7,
        description="how many backups of each kind the host keeps itself, newest first",
    )
    backup_server_ssh_port: Port = Field(
        22,
        description="the port of the backup servers' sshd on the private network",
    )

    def problems(self, host: Host) -> list[Problem]:
        store = validated(host, SessionStoreSettings, in_use=False)[0] if CACHE_SERVERS in host.groups else None
        snapshots = store is not None and store.keeps_data
        if not self.backups or not (DB_SERVERS in host.groups or snapshots):
            return []
        key_problem = (
            backup_public_key_problem(Path(self.backup_public_key).expanduser())
            if self.backup_public_key
            else "is not set, so backups could not be encrypted"
        )
        problems = (
            [Problem(host.name, "backup_public_key", self.backup_public_key, key_problem, KEYGEN_FIX)]
            if key_problem
            else []
        )
        problems += stored_key_problems(host, "backups", True)
        if store is not None and snapshots and SNAPSHOT_COMMANDS & set(store.redis_disabled_commands):
            problems.append(
                Problem(
                    host.name,
                    "redis_disabled_commands",
                    store.redis_disabled_commands,
                    f"disables {', '.join(sorted(SNAPSHOT_COMMANDS & set(store.redis_disabled_commands)))}, which "
                    f"the nightly snapshot of Redis's data needs (redis_persistence = {store.redis_persistence!r})",
                    "keep sync, psync and replconf, or set backups = False",
                )
            )
        if DB_SERVERS not in host.groups:
            return problems
        dump_password = stored(host, BACKUP_DUMP_PASSWORD, "backups", True, problems)
        if dump_password and set(dump_password.reveal()) & set('"\\\n'):
            problems.append(
                Problem(
                    host.name,
                    "backups",
                    True,
                    f"needs the dump password in {dump_password.source}, which holds "
                    "a double quote or a backslash (the option file quotes it)",
                    "store a password without them, or delete the file to have one generated",
                )
            )
        return problems


class DropBoxSettings(HostSettings):
    title = "Backup drop box"
    group = "backup_servers"

    offsite_backup_keep: Annotated[int, whole_number(1, 10000)] = Field(
        30,
        description="how many backups of each kind from each host a backup server keeps, newest first",
    )

    def problems(self, host: Host) -> list[Problem]:
        problems = []
        if any(host.inventory.get_group(group, []) for group in (DB_SERVERS, CACHE_SERVERS)):
            problems += access_rules.needs_private_ip(
                host, "the database servers and session stores copy backups to it there"
            )
        problems += stored_key_problems(host, "offsite_backup_keep", self.offsite_backup_keep)
        return problems


def backup_public_key_problem(path: Path) -> str | None:
    """Why the file at ``path`` cannot be the key backups are encrypted to, or None."""
    if not path.is_file():
        return "is not a file on this machine, so backups could not be encrypted"
    text = path.read_bytes()
    if b"PRIVATE KEY" in text:
        return "is a PRIVATE key: it must never reach a server; give its public half (keygen wrote both)"
    try:
        key = serialization.load_pem_public_key(text)
    except ValueError:
        return "is not a PEM public key (-----BEGIN PUBLIC KEY-----)"
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_BACKUP_KEY_BITS:
        return f"is not an RSA key of at least {MIN_BACKUP_KEY_BITS} bits"
    return None


def _new_ssh_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()


def public_line(private: Secret) -> str:
    """The authorized_keys line of the database servers' copy key. Raises ValueError for a value
    that is not an OpenSSH private key."""
    key = serialization.load_ssh_private_key(private.reveal().encode() + b"\n", password=None)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{public.decode()} db-backup@pyinfra-hardening"


def stored_key_problems(host: Host, key: str, value: object) -> list[Problem]:
    """A copy key in the store that is unsafe or not a key (one that is missing is generated on apply)."""
    problems: list[Problem] = []
    copy = stored(host, BACKUP_SSH_KEY, key, value, problems)
    try:
        if copy is not None:
            public_line(copy)
    except ValueError:
        problems.append(
            Problem(
                host.name,
                key,
                value,
                f"needs the key in {secret_store.where(BACKUP_SSH_KEY)}, which is not an OpenSSH private key",
                "delete it to have a new one generated",
            )
        )
    return problems


def copy_key() -> Secret:
    """The database servers' key for the backup servers: from the store, generated on apply."""
    return secret_store.generated(BACKUP_SSH_KEY, _new_ssh_key, compat.executing())


@dataclass(frozen=True)
class BackupPart:
    """One thing a host backs up each night, as pairs of files of its own."""

    source: str  # what its file names begin with
    kind: str  # SQL or RDB
    what: str  # how the log names it
    command: str  # prints it on standard output


@dataclass(frozen=True)
class Backups:
    """A host's nightly encrypted backup (guide 3.11.2)."""

    parts: tuple[BackupPart, ...]
    public_key: Path  # the operator's RSA key (PEM); its private half never leaves the operator
    time: tuple[int, int]  # hour, minute
    keep: int
    destinations: tuple[str, ...]  # the backup servers' private addresses
    ssh_port: int


def backups_of(host: Host) -> Backups | None:
    """What ``host`` backs up: the application's database on a database server, a snapshot of
    Redis's data on a session store that keeps it on disk; None for nothing."""
    settings = settings_for(host, BackupSettings)
    if not settings.backups or settings.backup_public_key is None:
        return None
    parts = []
    if DB_SERVERS in host.groups:
        database = settings_for(host, DatabaseSettings).app_database
        dump = f"mariadb-dump --defaults-extra-file={DUMP_OPTIONS} --single-transaction --skip-lock-tables {database}"
        parts.append(BackupPart(file_source(host.name, SQL), SQL, f"the {database} database", dump))
    if CACHE_SERVERS in host.groups and settings_for(host, SessionStoreSettings).keeps_data:
        # A point-in-time snapshot from the running server (as a replica gets one), whether it
        # keeps RDB snapshots or an AOF: nothing of its own files is read while Redis writes them.
        parts.append(BackupPart(file_source(host.name, RDB), RDB, "Redis's data", f"{ADMIN_CLI} --rdb -"))
    if not parts:
        return None
    hour, minute = (int(part) for part in settings.backup_time.split(":"))
    return Backups(
        tuple(parts),
        Path(settings.backup_public_key).expanduser(),
        (hour, minute),
        settings.backup_keep,
        fleet.private_ips(host.inventory, fleet.BACKUP_SERVERS),
        settings.backup_server_ssh_port,
    )


def file_source(host_name: str, kind: str) -> str:
    """What the names of a host's backups of ``kind`` begin with, before ``_`` and the time
    (which is why the host's name has no ``_``)."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", host_name) + SOURCE_SUFFIXES[kind]


def archive_suffix(kind: str) -> str:
    return f".{kind}.gz.enc"


def backup_sources(inventory: Inventory) -> tuple[str, ...]:
    """The private addresses the backup servers take backups from: the database servers' and
    the session stores' (each host once)."""
    return tuple(dict.fromkeys(fleet.private_ips(inventory, DB_SERVERS) + fleet.private_ips(inventory, CACHE_SERVERS)))


def scp_host(address: str) -> str:
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


def backup_script(backups: Backups) -> str:
    return render(
        BACKUP_SCRIPT,
        parts=backups.parts,
        backup_dir=BACKUP_DIR,
        public_key=PUBLIC_KEY,
        ssh_key=SSH_KEY,
        known_hosts=KNOWN_HOSTS,
        keep=backups.keep,
        iterations=backup_cli.PBKDF2_ITERATIONS,
        destinations=[scp_host(address) for address in backups.destinations],
        ssh_port=backups.ssh_port,
        account=ACCOUNT,
        log_file=LOG_FILE,
    )


# What the login alerts watch on a host that sends backups: the backup's own log.
BACKUP_LOG = WatchedLog(
    "db_backup",
    LOG_FILE,
    "# The nightly backup writes a line per run; a FAILED one (dump, encryption or copy) is an alert.",
)


def sshd_match_block() -> MatchBlock:
    """The backup account's rules in the SSH drop-in of a backup server."""
    return MatchBlock(
        ACCOUNT,
        "# Guide 3.11.2: the backup account of the database servers and session stores. Its key alone\n"
        "# (it runs unattended, no second factor), only from their addresses (authorized_keys), and\n"
        "# only SFTP into its drop box.",
        (
            "AuthenticationMethods publickey",
            f"AuthorizedKeysFile {AUTHORIZED_KEYS}",
            f"ChrootDirectory {CHROOT}",
            f"ForceCommand internal-sftp -d /{INCOMING_NAME} -u {SFTP_UMASK} -p {','.join(SFTP_REQUESTS)}",
            "AllowTcpForwarding no",
            "AllowStreamLocalForwarding no",
            "PermitTunnel no",
            "PermitTTY no",
            "X11Forwarding no",
        ),
    )


def alert_ignore_lines(host: Host) -> list[str]:
    """On a backup server: the backup account's nightly logins from the hosts that send backups raise no alert."""
    return [
        f"Accepted publickey for {re.escape(ACCOUNT)} from {re.escape(address)} port "
        for address in backup_sources(host.inventory)
    ]


def authorized_keys(sources: tuple[str, ...]) -> str:
    """The copy key, usable only from the addresses of the hosts that send backups and for
    nothing but SFTP; no key at all while the inventory has none of them."""
    if not sources:
        return "# No database servers or session stores in the inventory: no key is accepted.\n"
    return f'restrict,from="{",".join(sources)}" {public_line(copy_key())}\n'


@deploy("Encrypted backups")
def nightly_backups() -> None:
    """
    The nightly encrypted backup of what the host holds: a root-only script run by cron dumps
    the application's database on a database server (apply after
    ``database.mariadb(dump_account=True)``) and takes a snapshot of Redis's data on a session
    store whose ``redis_persistence`` is not 'none' (after ``session_store.redis()``), encrypts
    each to ``backup_public_key``, keeps ``backup_keep`` of each and copies them to the backup
    servers. Nothing with ``backups = False``.
    """
    backups = backups_of(host)
    if backups is None:
        return
    if not backups.destinations:
        host.log("No backup_servers in the inventory: backups stay on this host only")
    ensure_packages("Install what the backup uses", ["cron", "openssh-client", "openssl", "gzip"])
    directory(name=f"{CONFIG_DIR} exists", path=CONFIG_DIR, mode="755")
    directory(name=f"{BACKUP_DIR} is root's alone", path=BACKUP_DIR, mode="700")
    directory(name="/root/.ssh exists", path="/root/.ssh", mode="700")
    log_exists(BACKUP_LOG)
    validated_file(
        name="The operator's public key that backups are encrypted to",
        dest=PUBLIC_KEY,
        content=backups.public_key.read_text(),
        validator="openssl pkey -pubin -noout -in {}",
    )
    if any(part.kind == SQL for part in backups.parts):
        validated_file(
            name="The dump account's password, root-only (secret)",
            dest=DUMP_OPTIONS,
            validator=None,
            mode="600",
            content=lambda: render(
                DUMP_OPTIONS,
                user=DUMP_ACCOUNT[0],
                password=secret_store.generated(BACKUP_DUMP_PASSWORD, random_password, compat.executing()).reveal(),
            ),
            secret_pattern=DUMP_OPTIONS_SECRET,
        )
    validated_file(
        name="The key this server copies backups offsite with (secret)",
        dest=SSH_KEY,
        content=lambda: copy_key().reveal() + "\n",
        validator="ssh-keygen -y -f {} >/dev/null",
        mode="600",
        secret_pattern=SSH_KEY_SECRET,
    )
    validated_file(
        name="The backup script", dest=BACKUP_SCRIPT, content=backup_script(backups), validator="bash -n {}", mode="700"
    )
    services.nightly_job(BACKUP_CRON, BACKUP_SCRIPT, *backups.time)


@deploy("Backup drop box")
def backup_receiver() -> None:
    """
    A backup server's drop box: the account the database servers and session stores copy to can
    only add files (SFTP in a chroot, from their addresses, with their key); what arrives is
    sealed read-only for root at once and the newest ``offsite_backup_keep`` of each kind from
    each host kept. The SSH drop-in needs ``sshd_match_block()`` for the account
    (``ssh.harden(match_blocks=...)``).
    """
    keep = settings_for(host, DropBoxSettings).offsite_backup_keep
    sources = backup_sources(host.inventory)
    locked_system_account(ACCOUNT, CHROOT, "Backup account")
    # sshd's chroot must be root's and closed to writes; the account only writes inside, and the
    # sticky bit stops it removing what is sealed.
    directory(name=f"{CHROOT} is root's (the account's chroot)", path=CHROOT, user="root", group="root", mode="755")
    directory(
        name=f"{INCOMING}: the account may add files, not list them",
        path=INCOMING,
        user="root",
        group=ACCOUNT,
        mode="1730",
    )
    validated_file(
        name="Only the backup key of the database servers and session stores, only from their addresses",
        dest=AUTHORIZED_KEYS,
        content=lambda: authorized_keys(sources),
        validator="ssh-keygen -l -f {} >/dev/null" if sources else None,
    )
    changed = [
        validated_file(
            name="The sealing and rotation script",
            dest=SEAL_SCRIPT,
            validator="sh -n {}",
            mode="700",
            content=render(SEAL_SCRIPT, incoming=INCOMING, account=ACCOUNT, keep=keep, path_unit=f"{SEAL_UNIT}.path"),
        ),
        validated_file(
            name="Run it when a backup arrives",
            dest=f"/etc/systemd/system/{SEAL_UNIT}.path",
            content=render(f"/etc/systemd/system/{SEAL_UNIT}.path", incoming=INCOMING),
            validator=None,
        ),
        validated_file(
            name="What runs it",
            dest=f"/etc/systemd/system/{SEAL_UNIT}.service",
            content=render(f"/etc/systemd/system/{SEAL_UNIT}.service", script=SEAL_SCRIPT),
            validator=None,
        ),
    ]
    systemd.daemon_reload(name="systemd reads the units", _if=any_changed(*changed))
    services.unit_running(name="Seal backups as they arrive", unit=f"{SEAL_UNIT}.path")
