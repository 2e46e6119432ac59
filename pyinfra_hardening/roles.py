"""The server roles, each a ``@deploy`` composed of the concerns, for the hosts of its group:

    pyinfra inventories/prod.py pyinfra_hardening.roles.app_server

Every role first validates every concern it uses, on every host of its group, so a bad value
anywhere stops the run before a single operation runs on any host.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from pyinfra import host
from pyinfra.api import deploy

from . import (
    accounts,
    application,
    audit_trail,
    backups,
    compat,
    database,
    file_integrity,
    firewall,
    fleet_tls,
    login_alerts,
    os_hardening,
    passwords,
    remote_logging,
    session_store,
    ssh,
    sudo,
    timesync,
    tls_front,
)
from .data_types import HostSettings
from .fleet import APP_SERVERS, BACKUP_SERVERS, CACHE_SERVERS, DB_SERVERS, FleetSettings
from .settings import SettingsError, run_hosts, settings_for, validate, validated

if TYPE_CHECKING:
    from pyinfra.api import State
    from pyinfra.api.host import Host

# What every role applies, and its settings.
BASELINE: list[type[HostSettings]] = [
    FleetSettings,
    accounts.AccountSettings,
    sudo.SudoSettings,
    passwords.PasswordSettings,
    timesync.TimeSyncSettings,
    os_hardening.OsHardeningSettings,
    ssh.SshSettings,
    login_alerts.LoginAlertSettings,
    firewall.FirewallSettings,
    file_integrity.FileIntegritySettings,
    remote_logging.RemoteLoggingSettings,
    audit_trail.AuditTrailSettings,
]
# The baseline's concerns that read facts while they load (each says which).
FIRST_READERS = (os_hardening, audit_trail, accounts, sudo, ssh, login_alerts, file_integrity)
# The role groups, in the order all_servers applies them (as its deploy files are usually named).
ROLE_ORDER = (APP_SERVERS, DB_SERVERS, CACHE_SERVERS, BACKUP_SERVERS)
# Each role's deploy (a function below) and the groups it acts on.
ROLE_DEPLOYS = {
    "app_server": {APP_SERVERS},
    "db_server": {DB_SERVERS},
    "cache_server": {CACHE_SERVERS},
    "backup_server": {BACKUP_SERVERS},
    "all_servers": set(ROLE_ORDER),
}
ROLE_SETTINGS: dict[str, list[type[HostSettings]]] = {
    APP_SERVERS: [*BASELINE, application.ApplicationSettings, tls_front.TlsFrontSettings],
    DB_SERVERS: [*BASELINE, fleet_tls.FleetTlsSettings, database.DatabaseSettings, backups.BackupSettings],
    CACHE_SERVERS: [*BASELINE, fleet_tls.FleetTlsSettings, session_store.SessionStoreSettings, backups.BackupSettings],
    BACKUP_SERVERS: [*BASELINE, backups.DropBoxSettings],
}
# What a run has applied to each host already: a host in two roles, both deployed in one run,
# gets the shared parts (baseline, firewall, the sudo lock) once.
_applied: WeakKeyDictionary[Host, set[str]] = WeakKeyDictionary()


def once(part: Callable[[], object]) -> None:
    """Apply ``part`` to this host unless another role did in this run."""
    current = compat.current_host()
    assert current is not None  # roles are deploys: pyinfra loads them for one host at a time
    done = _applied.setdefault(current, set())
    if part.__qualname__ not in done:
        done.add(part.__qualname__)
        part()


def check_roles(hosts: list[Host], remember: bool = True) -> None:
    """Every role's settings on each of ``hosts`` that has the role, all problems at once.
    Values are checked everywhere; a backup server is not asked for a database's settings."""
    problems = []
    for group, models in ROLE_SETTINGS.items():
        try:
            validate(hosts, models, [member for member in hosts if group in member.groups], remember)
        except SettingsError as error:
            problems += error.problems
    if problems:
        raise SettingsError(problems)


def baseline(
    key_logins: bool = False,
    ignore_lines: tuple[str, ...] = (),
    watched_logs: tuple[login_alerts.WatchedLog, ...] = (),
    match_blocks: tuple[ssh.MatchBlock, ...] = (),
) -> None:
    """What every role gets: the operating system's hardening (first: it installs the CA bundle
    the alerts' relay check needs), auditd, AIDE (its record is written last, in
    ``shared_end``), clock, password quality, admins, sudo rules, a locked root, SSH, an alert
    for every SSH login, and remote logging."""
    os_hardening.os_hardening()
    audit_trail.audit_trail()
    file_integrity.file_integrity()
    timesync.time_sync()
    passwords.password_quality()
    accounts.admin_users()
    sudo.managed_sudoers()
    # After the admins exist, before any lock: its probe logs in as one and sudoes.
    ssh.harden(
        match_blocks=match_blocks,
        locks_pending=accounts.root_lock_pending(host) or sudo.nopasswd_pending(host),
        banner=os_hardening.NETWORK_BANNER,
    )
    accounts.lock_root()
    login_alerts.login_alerts(
        two_factor=settings_for(host, ssh.SshSettings).ssh_two_factor,
        key_logins=key_logins,
        ignore_lines=ignore_lines,
        watched_logs=watched_logs,
    )
    remote_logging.remote_logging()


def check_before_connecting() -> None:
    """Before pyinfra connects to any host (a project's config.py calls this): narrow a run of
    role deploys to the hosts of those roles, so each host is logged in to once per run and
    separate role runs never share a host's TOTP window; then check every role's settings on
    those hosts (the rules that read the hosts follow once connected)."""
    compat.before_connecting(_prepare_run)
    compat.check_connector_data(_refuse_connection_data)


def _prepare_run(state: State) -> None:
    groups = deployed_groups(compat.command_line_operations())
    if groups:
        compat.limit_to(state, [member for member in state.inventory if set(member.groups) & groups])
    check_roles(compat.hosts_in_limit(state), remember=False)


def deployed_groups(operations: Sequence[str]) -> set[str] | None:
    """The role groups a pyinfra command's deploys apply, when every one of them is a role of
    this package (``deploys/app_server.py`` as ``init`` writes it, or the module path
    ``pyinfra_hardening.roles.app_server``); None when any is something else."""
    groups: set[str] = set()
    for operation in operations:
        called = ROLE_DEPLOYS.get(operation.removeprefix(f"{__name__}.")) if operation.startswith(__name__) else None
        found = called or _roles_called_by(Path(operation))
        if not found:
            return None
        groups |= found
    return groups or None


def _roles_called_by(path: Path) -> set[str]:
    """The role groups a deploy file applies, if all it does is import and call roles of this
    module (docstring, imports and calls only); else an empty set."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, ValueError):
        return set()
    imported: dict[str, str] = {}
    called: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == __name__:
            imported.update({alias.asname or alias.name: alias.name for alias in node.names})
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        elif (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and imported.get(node.value.func.id) in ROLE_DEPLOYS
            and not node.value.args
            and not node.value.keywords
        ):
            called |= ROLE_DEPLOYS[imported[node.value.func.id]]
        else:
            return set()
    return called


def _refuse_connection_data(host: Host) -> None:
    problems = validated(host, FleetSettings, in_use=False)[1]
    if problems:
        raise SettingsError(problems)


def host_baseline() -> None:
    """The baseline with what each of the host's roles adds to it (a host that sends backups
    watches their log, a backup server takes key-only logins for the drop box), so every role's
    deploy gives a host in several roles the same baseline."""
    # What the baseline's concerns read while they load, in one round trip rather than one each.
    compat.read_facts_at_once([read for concern in FIRST_READERS for read in concern.facts_read_first()])
    drop_box = BACKUP_SERVERS in host.groups
    watched_logs = [backups.BACKUP_LOG] if backups.backups_of(host) else []
    if settings_for(host, file_integrity.FileIntegritySettings).file_integrity:
        watched_logs.append(file_integrity.CHECK_WATCH)
    baseline(
        key_logins=drop_box,
        ignore_lines=tuple(backups.alert_ignore_lines(host)) if drop_box else (),
        watched_logs=tuple(watched_logs),
        match_blocks=(backups.sshd_match_block(),) if drop_box else (),
    )


def shared_start() -> None:
    """What every role begins with, once per host and run: the baseline."""
    once(host_baseline)


def shared_firewall() -> None:
    """The firewall, once per host and run: its rules cover all of the host's roles."""
    once(firewall.firewall)


def shared_end(group: str) -> None:
    """AIDE's record of the host and the sudo lock, in the last of the host's roles in this run.
    The lock may end passwordless sudo for the user connected as: AIDE records the host after
    it where that user keeps sudo (root, an admin), else before it, leaving the next run to
    record the lock's change."""
    if group != _last_role_in_run(group):
        return
    keeps_sudo = sudo.connected_user_keeps_sudo(host)
    if not keeps_sudo:
        file_integrity.record(mark_stale=sudo.nopasswd_pending(host))
    sudo.lock_sudo()
    if keeps_sudo:
        file_integrity.record()


def _last_role_in_run(current: str) -> str:
    """The last of the host's role groups that this run's deploys apply (``current`` when the
    command line is not made of role deploys alone)."""
    ordered: list[str] = []
    for operation in compat.command_line_operations():
        groups = deployed_groups([operation])
        if groups is None:
            return current
        ordered += [group for group in ROLE_ORDER if group in groups & set(host.groups)]
    return ordered[-1] if ordered else current


def app_before_firewall() -> None:
    """The app server's own parts that come before the firewall."""
    application.application_user()
    config = application.production_config()
    application.application_service(config=config, certificate=tls_front.application_certificate())
    tls_front.front_packages(settings_for(host, tls_front.TlsFrontSettings))


def app_after_firewall() -> None:
    """After the firewall: the ACME CA's challenge reaches port 80 only once it is open to nginx."""
    tls_front.public_tls()


def db_parts() -> None:
    database.mariadb(dump_account=settings_for(host, backups.BackupSettings).backups)
    once(backups.nightly_backups)


def cache_parts() -> None:
    session_store.redis()
    once(backups.nightly_backups)


@deploy("Application server")
def app_server() -> None:
    """
    The application server: the baseline, the locked application user (guide 4.1), its
    production config with a client certificate for the database and the session store (4.2,
    4.5), its sandboxed service (with ``app_command``), a firewall open to SSH and the public
    ports (3.11), and the nginx TLS front on 80/443 with its certificate (4.2; with
    ``tls_front = False``: the application's ports, 80/443 redirected to them, and a certificate
    for the application). Acts on the hosts of the ``app_servers`` group only, like every role
    on its own group.
    """
    check_roles(run_hosts(host.inventory))
    if APP_SERVERS not in host.groups:
        return
    shared_start()
    app_before_firewall()
    shared_firewall()
    app_after_firewall()
    shared_end(APP_SERVERS)


@deploy("Database server")
def db_server() -> None:
    """
    The database server: the baseline, a firewall that admits SSH and the database port from the
    app servers only, MariaDB over verified TLS only (guide 3.11.1, 4.2, 4.6) and the nightly
    encrypted backups (3.11.2).
    """
    check_roles(run_hosts(host.inventory))
    if DB_SERVERS not in host.groups:
        return
    shared_start()
    shared_firewall()
    db_parts()
    shared_end(DB_SERVERS)


@deploy("Cache server")
def cache_server() -> None:
    """
    The session store: the baseline, a firewall that admits SSH and Redis's TLS port from the
    app servers only, Redis to the Redis security checklist (``session_store.redis``), and with
    ``redis_persistence``, the nightly encrypted backup of its data. A host may be a database
    server too (one backup script then backs up both).
    """
    check_roles(run_hosts(host.inventory))
    if CACHE_SERVERS not in host.groups:
        return
    shared_start()
    shared_firewall()
    cache_parts()
    shared_end(CACHE_SERVERS)


@deploy("Backup server")
def backup_server() -> None:
    """
    The backup server: the baseline, a firewall that admits SSH from the database servers and
    session stores only, and a drop box they can only add backups to (guide 3.11.2).
    """
    check_roles(run_hosts(host.inventory))
    if BACKUP_SERVERS not in host.groups:
        return
    shared_start()
    shared_firewall()
    backups.backup_receiver()
    shared_end(BACKUP_SERVERS)


@deploy("Every server role")
def all_servers() -> None:
    """
    Every role on the hosts of its group, in one deploy: what the four role deploys do when run
    in one command, each host's parts in the same order. Faster on a fleet: pyinfra runs an
    operation on every host that has it at once, and here the parts the roles share (the
    baseline, the firewall, AIDE's record and the sudo lock) are the same operations for every
    host, where four deploy files run them file after file.
    """
    check_roles(run_hosts(host.inventory))
    groups = [group for group in ROLE_ORDER if group in host.groups]
    if not groups:
        return
    shared_start()
    if APP_SERVERS in groups:
        app_before_firewall()
    shared_firewall()
    if APP_SERVERS in groups:
        app_after_firewall()
    if DB_SERVERS in groups:
        db_parts()
    if CACHE_SERVERS in groups:
        cache_parts()
    if BACKUP_SERVERS in groups:
        backups.backup_receiver()
    shared_end(groups[-1])
