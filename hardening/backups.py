"""Encrypted offsite backups (guide 3.11.2).

On a database server: a root-only script, run nightly by cron, dumps the application's database
and encrypts it to the operator's RSA public key, keeps the newest N, and copies each new pair to
the backup servers with scp, as a dedicated account, with a key of its own.

On a backup server: that account can only drop files into one directory (SFTP in a chroot, no
reading, listing, renaming or deleting, no shell, only from the database servers); what arrives
is sealed read-only for root at once and the newest N of each database server kept.
The operator restores with ``hardening-backup restore`` (hardening/backup_cli.py).
"""

from __future__ import annotations

import ipaddress
import re

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, server, systemd

from .accounts import NO_LOGIN_SHELL, locked_password
from .backup_cli import PBKDF2_ITERATIONS
from .database import DUMP_ACCOUNT
from .files import any_changed, render, validated_file
from .packages import ensure_packages
from .settings import Settings

# Database server side.
BACKUP_SCRIPT = "/usr/local/sbin/db-backup"
BACKUP_CRON = "/etc/cron.d/pyinfra-hardening-db-backup"
BACKUP_DIR = "/var/backups/db-encrypted"
CONFIG_DIR = "/etc/pyinfra-hardening"
DUMP_OPTIONS = f"{CONFIG_DIR}/backup-dump.cnf"
PUBLIC_KEY = f"{CONFIG_DIR}/backup-public.pem"
SSH_KEY = "/root/.ssh/db-backup_ed25519"
KNOWN_HOSTS = "/root/.ssh/db-backup_known_hosts"
# What each run did, one line each; Monit alerts on a FAILED line (hardening/login_alerts.py).
LOG_FILE = "/var/log/db-backup.log"
DUMP_OPTIONS_SECRET = r'password = "([^"]*)"'
SSH_KEY_SECRET = r"(?s)-----BEGIN OPENSSH PRIVATE KEY-----\n(.*?)\n-----END"

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
SFTP_REQUESTS = ("open", "close", "write", "fsetstat", "lstat", "fstat", "stat", "realpath", "limits",
                 "expand-path")
# Files it creates are write-only for it, even before they are sealed.
SFTP_UMASK = "0577"


def source_name(host_name: str) -> str:
    """The database server's name in backup file names (no ``_``: it separates name and time)."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", host_name)


def scp_host(address: str) -> str:
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


def backup_script(settings: Settings) -> str:
    backups = settings.backups
    return render(
        BACKUP_SCRIPT, database=backups.database, backup_dir=BACKUP_DIR, dump_options=DUMP_OPTIONS,
        public_key=PUBLIC_KEY, ssh_key=SSH_KEY, known_hosts=KNOWN_HOSTS, keep=backups.keep,
        iterations=PBKDF2_ITERATIONS, destinations=[scp_host(address) for address in backups.destinations],
        ssh_port=backups.ssh_port, source=source_name(settings.host_name), account=ACCOUNT, log_file=LOG_FILE,
    )


def sshd_match_block(settings: Settings) -> dict | None:
    """What the SSH drop-in needs for the backup account on a backup server (None elsewhere)."""
    if settings.backup_receiver is None:
        return None
    return {
        "account": ACCOUNT,
        "authorized_keys": AUTHORIZED_KEYS,
        "chroot": CHROOT,
        "force_command": f"internal-sftp -d /{INCOMING_NAME} -u {SFTP_UMASK} -p {','.join(SFTP_REQUESTS)}",
    }


def authorized_keys(settings: Settings) -> str:
    """The database servers' key, usable only from their addresses and for nothing but SFTP; no
    key at all while the inventory has no database server."""
    receiver = settings.backup_receiver
    if not receiver.sources:
        return "# No database servers in the inventory: no key is accepted.\n"
    sources = ",".join(receiver.sources)
    return f'restrict,from="{sources}" {receiver.ssh_public_key}\n'


def log_file_exists():
    """The backup log, before anything (Monit) watches it: a missing file raises an alert."""
    files.file(name=f"{LOG_FILE} exists", path=LOG_FILE, user="root", group="adm", mode="640")


@deploy("Encrypted backups")
def database_backups(settings: Settings):
    backups = settings.backups
    if backups is None:
        return
    if not backups.destinations:
        host.log("No backup_servers in the inventory: backups stay on this host only")
    ensure_packages("Install what the backup uses", ["cron", "openssh-client", "openssl", "gzip"])
    files.directory(name=f"{CONFIG_DIR} exists", path=CONFIG_DIR, mode="755")
    files.directory(name=f"{BACKUP_DIR} is root's alone", path=BACKUP_DIR, mode="700")
    files.directory(name="/root/.ssh exists", path="/root/.ssh", mode="700")
    log_file_exists()
    validated_file(name="The operator's public key that backups are encrypted to", dest=PUBLIC_KEY,
                   content=backups.public_key, validator="openssl pkey -pubin -noout -in {}")
    validated_file(name="The dump account's password, root-only (secret)", dest=DUMP_OPTIONS,
                   content=render(DUMP_OPTIONS, user=DUMP_ACCOUNT[0], password=backups.dump_password.reveal()),
                   validator=None, mode="600", secret_pattern=DUMP_OPTIONS_SECRET)
    validated_file(name="The key this server copies backups offsite with (secret)", dest=SSH_KEY,
                   content=backups.ssh_key.reveal() + "\n", validator="ssh-keygen -y -f {} >/dev/null",
                   mode="600", secret_pattern=SSH_KEY_SECRET)
    validated_file(name="The backup script", dest=BACKUP_SCRIPT, content=backup_script(settings),
                   validator="bash -n {}", mode="700")
    hour, minute = backups.time
    validated_file(name=f"Run it nightly at {hour:02d}:{minute:02d}", dest=BACKUP_CRON,
                   content=render(BACKUP_CRON, hour=hour, minute=minute, script=BACKUP_SCRIPT), validator=None)
    systemd.service(name="cron runs", service="cron", running=True, enabled=True)


@deploy("Backup drop box")
def backup_receiver(settings: Settings):
    receiver = settings.backup_receiver
    server.user(
        name=f"Backup account {ACCOUNT}: system account, no shell",
        user=ACCOUNT, system=True, shell=NO_LOGIN_SHELL, home=CHROOT, ensure_home=False, create_home=False,
    )
    locked_password(name=f"Backup account {ACCOUNT}: no password", user=ACCOUNT)
    # sshd's chroot must be root's and closed to writes; the account only writes inside, and the
    # sticky bit stops it removing what is sealed.
    files.directory(name=f"{CHROOT} is root's (the account's chroot)", path=CHROOT, user="root", group="root",
                    mode="755")
    files.directory(name=f"{INCOMING}: the account may add files, not list them", path=INCOMING, user="root",
                    group=ACCOUNT, mode="1730")
    validated_file(name="Only the database servers' backup key, only from their addresses", dest=AUTHORIZED_KEYS,
                   content=authorized_keys(settings),
                   validator="ssh-keygen -l -f {} >/dev/null" if receiver.sources else None)
    changed = [
        validated_file(name="The sealing and rotation script", dest=SEAL_SCRIPT, validator="sh -n {}", mode="700",
                       content=render(SEAL_SCRIPT, incoming=INCOMING, account=ACCOUNT, keep=receiver.keep,
                                      path_unit=f"{SEAL_UNIT}.path")),
        validated_file(name="Run it when a backup arrives", dest=f"/etc/systemd/system/{SEAL_UNIT}.path",
                       content=render(f"/etc/systemd/system/{SEAL_UNIT}.path", incoming=INCOMING),
                       validator=None),
        validated_file(name="What runs it", dest=f"/etc/systemd/system/{SEAL_UNIT}.service",
                       content=render(f"/etc/systemd/system/{SEAL_UNIT}.service", script=SEAL_SCRIPT),
                       validator=None),
    ]
    systemd.daemon_reload(name="systemd reads the units", _if=any_changed(changed))
    systemd.service(name="Seal backups as they arrive", service=f"{SEAL_UNIT}.path", running=True, enabled=True)
