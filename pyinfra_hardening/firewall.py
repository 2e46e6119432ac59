"""Firewall (guide 3.11): default-drop iptables rules for IPv4 and IPv6, opened per role from the
inventory, applied so that a rule set which cuts off SSH undoes itself.

A change runs in three steps:
1. both candidates pass ``iptables-restore --test``; the live rules are saved; a systemd timer is
   armed to put them back after ``firewall_rollback_seconds``; the candidates go live;
2. a fresh SSH connection from the operator's machine must get through the new rules;
3. only then are they saved for netfilter-persistent (next boot) and the timer disarmed.
If step 2 fails, or the run dies on the way, the timer restores the previous rules by itself.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import paramiko
from pydantic import Field, field_validator
from pyinfra import host, state
from pyinfra.api import FactBase, OperationError, StringCommand, deploy, operation
from pyinfra.facts.files import FileContents
from pyinfra.operations import python
from pyinfra.operations.util import any_changed

from . import access_rules, compat, fleet, remote_logging, services
from .backups import backup_sources
from .data_types import Flag, HostSettings, Networks, Port, described, documented_in, whole_number
from .database import DatabaseSettings
from .fleet import APP_SERVERS, BACKUP_SERVERS, CACHE_SERVERS, DB_SERVERS
from .managed_files import candidate_path, directory, print_diff, render, sha256_of, upload_text
from .packages import ensure_packages
from .session_store import SessionStoreSettings
from .settings import Problem, settings_for, validated
from .ssh import open_transport
from .tls_front import FRONT_PORTS, TlsFrontSettings

if TYPE_CHECKING:
    from pyinfra.api.host import Host

FAMILIES = (4, 6)
RULE_DIR = "/etc/iptables"
RULE_FILES = {4: f"{RULE_DIR}/rules.v4", 6: f"{RULE_DIR}/rules.v6"}
SAVE = {4: "iptables-save", 6: "ip6tables-save"}
RESTORE = {4: "iptables-restore", 6: "ip6tables-restore"}
STATE_DIR = "/var/lib/pyinfra-hardening/firewall"
ROLLBACK_UNIT = "hardening-firewall-rollback"
# The tables our rule files replace, empty and open: restored first on rollback, so rules we
# added to a table the saved state did not have (a fresh host has no nat table) go too.
EMPTY_TABLES = (
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"
)
NEIGHBOUR_DISCOVERY = (133, 134, 135, 136)  # router solicitation/advertisement, neighbour ditto
MULTICAST_LISTENER = (130, 131, 132, 143)
# How long the operator's machine keeps trying to connect through new rules (well inside the
# shortest rollback window, so a confirmation never comes after the rollback).
CONFIRM_ATTEMPTS, CONFIRM_TIMEOUT = 3, 4.0


class FirewallSettings(HostSettings):
    title = "Firewall"

    admin_cidrs: Networks = Field(
        [],
        description="networks the operators connect from; SSH is open to them (on app servers: only to them, if set)",
    )
    firewall: Flag = Field(
        True,
        description="default-drop iptables rules, IPv4 and IPv6; off only where a cloud firewall does it (guide 3.11)",
    )
    firewall_rollback_seconds: Annotated[int, whole_number(30, 600)] = Field(
        60, description="new rules are undone after this long unless a fresh SSH connection confirms them"
    )
    app_tcp_ports: Annotated[
        list[Port], described("must be a list of TCP ports, each a whole number from 1 to 65535")
    ] = Field(
        [80, 443, 3000, 3003],
        json_schema_extra=documented_in("app_servers"),
        description="with tls_front = False: TCP ports the application serves to everyone, besides SSH (guide "
        "3.11); with the front on, 80 and 443 alone are public",
    )
    app_port_redirects: Annotated[
        dict[Port, Port], described("must map a public port to the application's port, like {80: 3000, 443: 3003}")
    ] = Field(
        {80: 3000, 443: 3003},
        json_schema_extra=documented_in("app_servers"),
        description="with tls_front = False: public ports sent on to the unprivileged application (guide 3.11)",
    )

    @field_validator("app_tcp_ports")
    @classmethod
    def _each_port_once(cls, ports: list[int]) -> list[int]:
        if len(set(ports)) != len(ports):
            raise ValueError("lists a port twice")
        return ports

    def problems(self, host: Host) -> list[Problem]:
        """Firewall data that cannot work: a port two services claim, a redirect into a closed
        port, a peer nobody can name."""
        problems = self._shared_ports(host)
        if not self.firewall:
            return problems
        problems += access_rules.peers_need_private_ip(host)
        if behind_front(host):
            return problems
        closed = [
            f"{public} -> {private}"
            for public, private in self.app_port_redirects.items()
            if private not in self.app_tcp_ports
        ]
        if APP_SERVERS in host.groups and closed:
            problems.append(
                Problem(
                    host.name,
                    "app_port_redirects",
                    self.app_port_redirects,
                    f"redirects into port(s) app_tcp_ports leaves closed ({', '.join(closed)}), so that traffic "
                    "would be dropped",
                    "add the target port(s) to app_tcp_ports",
                )
            )
        return problems

    def _shared_ports(self, host: Host) -> list[Problem]:
        """A port public on an app server must be neither sshd's (a redirect from it would cut
        SSH off, one to it would take SSH past admin_cidrs) nor, on a host that is also a
        database server, MariaDB's. sshd's ports are read from the host once connected."""
        if APP_SERVERS not in host.groups:
            return []
        ssh_ports = host.get_fact(SshdPorts) if fleet.reads_host(host) else []
        claimed = {port: "sshd's port on this host" for port in ssh_ports}
        if DB_SERVERS in host.groups:
            database = validated(host, DatabaseSettings, in_use=False)[0]
            if database is not None:
                claimed[database.database_port] = (
                    "the database's port (database_port), which only app servers may reach"
                )
        if CACHE_SERVERS in host.groups:
            store = validated(host, SessionStoreSettings, in_use=False)[0]
            if store is not None:
                claimed[store.redis_port] = "the session store's port (redis_port), which only app servers may reach"
        problems = []
        public, redirects = application_ports(host, self)
        if behind_front(host):  # nginx cannot listen where sshd does
            ports_key: tuple[str, object] = ("tls_front", True)
        else:
            ports_key, public = ("app_tcp_ports", public), [port for port in public if port not in ssh_ports]
        for (key, value), ports in (
            (ports_key, public),
            (("app_port_redirects", redirects), [*redirects, *redirects.values()]),
        ):
            for port in sorted(set(ports) & set(claimed)):
                problems.append(
                    Problem(
                        host.name,
                        key,
                        value,
                        f"makes port {port} public, but it is {claimed[port]}",
                        "use another port for the application, or move that service",
                    )
                )
        return problems


def behind_front(host: Host) -> bool:
    """Whether the host is an app server whose application is behind the TLS front (its data
    valid: TlsFrontSettings reports its own problems)."""
    front = validated(host, TlsFrontSettings, in_use=False)[0]
    return APP_SERVERS in host.groups and front is not None and front.tls_front


def application_ports(host: Host, settings: FirewallSettings) -> tuple[list[int], dict[int, int]]:
    """What an app server serves to everyone, and the redirects among those ports: with the TLS
    front on, its 80 and 443 alone (the application is reached through it, on loopback); else
    ``app_tcp_ports`` and ``app_port_redirects`` (the guide's model)."""
    if behind_front(host):
        return list(FRONT_PORTS), {}
    return settings.app_tcp_ports, settings.app_port_redirects


# --- what is open to whom ------------------------------------------------------------------------


@dataclass(frozen=True)
class FirewallPlan:
    """What a host's rules are computed from: its roles, its settings and its peers'."""

    roles: tuple[str, ...]
    admin_cidrs: tuple[str, ...]
    app_tcp_ports: tuple[int, ...]
    app_port_redirects: tuple[tuple[int, int], ...]
    database_port: int
    session_store_port: int
    # Private addresses of the inventory's app servers, and of the hosts that send backups (its
    # database servers and session stores): who may reach whom.
    app_server_ips: tuple[str, ...]
    backup_source_ips: tuple[str, ...]
    # On the log server: its syslog port (else 0) and the hosts that send it their logs.
    log_port: int = 0
    log_sender_ips: tuple[str, ...] = ()


def plan_for(host: Host) -> FirewallPlan:
    settings = settings_for(host, FirewallSettings)
    roles = fleet.roles_of(host)
    database_port = settings_for(host, DatabaseSettings).database_port if DB_SERVERS in roles else 0
    session_store_port = settings_for(host, SessionStoreSettings).redis_port if CACHE_SERVERS in roles else 0
    public, redirects = application_ports(host, settings)
    return FirewallPlan(
        roles,
        tuple(settings.admin_cidrs),
        tuple(public),
        tuple(sorted(redirects.items())),
        database_port,
        session_store_port,
        fleet.private_ips(host.inventory, APP_SERVERS),
        backup_sources(host.inventory),
        log_port := remote_logging.receiving_port(host),
        remote_logging.senders(host.inventory) if log_port else (),
    )


@dataclass(frozen=True)
class Opening:
    """A TCP port accepted from ``sources`` (networks), or from anyone when ``sources`` is None."""

    port: int
    sources: tuple[str, ...] | None
    why: str

    def sources_in(self, family: int) -> list[str | None]:
        """The ``-s`` values of this opening's rules for one IP family (None: any source)."""
        if self.sources is None:
            return [None]
        return [source for source in self.sources if ipaddress.ip_network(source).version == family]

    def admits(self, address: str) -> bool:
        if self.sources is None:
            return True
        return any(ipaddress.ip_address(address) in ipaddress.ip_network(source) for source in self.sources)


def networks(addresses: Iterable[str]) -> tuple[str, ...]:
    """Addresses and networks as networks (``10.0.0.5`` -> ``10.0.0.5/32``), each once."""
    return tuple(dict.fromkeys(str(ipaddress.ip_network(address, strict=False)) for address in addresses))


def openings(settings: FirewallPlan, ssh_ports: list[int]) -> list[Opening]:
    """What the host's roles open. SSH: an app server is the way in (to everyone, or to
    admin_cidrs when set); a database or cache server admits the app servers, a backup server
    the database and cache servers, all also admin_cidrs; the log server takes the fleet's logs
    from their senders. A host in several roles gets the union."""
    roles = settings.roles
    if APP_SERVERS in roles and not settings.admin_cidrs:
        ssh_sources = None
    else:
        admitted = list(settings.admin_cidrs)
        if DB_SERVERS in roles or CACHE_SERVERS in roles:
            admitted += settings.app_server_ips
        if BACKUP_SERVERS in roles:
            admitted += settings.backup_source_ips
        ssh_sources = networks(admitted)
    result = [Opening(port, ssh_sources, "SSH") for port in ssh_ports]
    if APP_SERVERS in roles:
        result += [Opening(port, None, "the application") for port in settings.app_tcp_ports]
    if DB_SERVERS in roles:
        result.append(
            Opening(settings.database_port, networks(settings.app_server_ips), "the database, for the app servers only")
        )
    if CACHE_SERVERS in roles:
        app_servers = networks(settings.app_server_ips)
        result.append(Opening(settings.session_store_port, app_servers, "the session store, for app servers only"))
    if settings.log_port and settings.log_sender_ips:
        result.append(Opening(settings.log_port, networks(settings.log_sender_ips), "syslog over TLS, from the fleet"))
    return result


def ruleset(settings: FirewallPlan, family: int, opened: list[Opening]) -> str:
    tcp = [
        {"why": opening.why, "port": opening.port, "sources": opening.sources_in(family)}
        for opening in opened
        if opening.sources_in(family)
    ]
    app_server = APP_SERVERS in settings.roles
    return render(
        RULE_FILES[family],
        family=family,
        roles=settings.roles,
        tcp=tcp,
        app_server=app_server,
        redirects=settings.app_port_redirects if app_server else (),
        neighbour_discovery=NEIGHBOUR_DISCOVERY,
        multicast_listener=MULTICAST_LISTENER,
    )


# --- facts ---------------------------------------------------------------------------------------


def tables_of(rules: str) -> tuple[str, ...]:
    """The tables a rule file replaces: nat only on app servers, for the redirects; elsewhere
    other software (Docker's DNS, for one) keeps its own nat rules."""
    return tuple(re.findall(r"^\*(\w+)$", rules, re.M))


def live_rules(family: int, tables: tuple[str, ...]) -> str:
    """Shell: the live rules of ``tables``, without the dates and counters that change alone."""
    dumps = "; ".join(f"{SAVE[family]} -t {table}" for table in tables)
    return f"{{ {dumps}; }} 2>/dev/null | sed -e '/^#/d' -e 's/ \\[[0-9]*:[0-9]*\\]$//'"


@dataclass(frozen=True)
class FamilyState:
    file_sha: str | None  # of the saved rules file
    live_sha: str  # of the live rules
    applied_sha: str | None  # of the live rules right after this tool last applied them

    @property
    def drifted(self) -> bool:
        return self.live_sha != self.applied_sha


class FirewallState(FactBase[dict[int, FamilyState]]):
    """Per IP family: fingerprints of the saved rules, the live rules, and the live rules as
    they were when last applied (so rules flushed by hand are noticed and applied again)."""

    def command(self, tables: tuple[str, ...]) -> str:
        lines = []
        for family in FAMILIES:
            lines.append(
                f"file=$(test -f {RULE_FILES[family]} && sha256sum < {RULE_FILES[family]} | cut -c1-64); "
                f"live=$({live_rules(family, tables)} | sha256sum | cut -c1-64); "
                f"applied=$(cat {STATE_DIR}/applied.v{family} 2>/dev/null); "
                f'echo "{family} ${{file:--}} $live ${{applied:--}}"'
            )
        return "; ".join(lines)

    def process(self, output: list[str]) -> dict[int, FamilyState]:
        result = {}
        for line in output:
            family, file_sha, live_sha, applied_sha = line.split()
            result[int(family)] = FamilyState(
                None if file_sha == "-" else file_sha, live_sha, None if applied_sha == "-" else applied_sha
            )
        return result


class SshdPorts(FactBase[list[int]]):
    """The ports sshd listens on, as it reads its configuration."""

    def command(self) -> str:
        return "sshd -T 2>/dev/null | awk '$1 == \"port\" {print $2}'"

    default = list

    def process(self, output: list[str]) -> list[int]:
        return sorted({int(line) for line in output if line.strip().isdigit()})


class OperatorAddress(FactBase[str | None]):
    """The address this run's SSH connection comes from, as the host sees it (None if the
    connection is not SSH). Read without sudo, which drops SSH_CONNECTION."""

    def command(self) -> str:
        return 'echo "${SSH_CONNECTION:-}"'

    def process(self, output: list[str]) -> str | None:
        fields = output[0].split() if output else []
        return fields[0] if fields else None


# --- operations ----------------------------------------------------------------------------------


def candidate(family: int) -> str:
    return candidate_path(RULE_FILES[family])


def _restore_previous() -> str:
    restores = "; ".join(f"{RESTORE[family]} {STATE_DIR}/rollback.v{family}" for family in FAMILIES)
    return f"{restores}; rm -f {' '.join(candidate(family) for family in FAMILIES)}"


@compat.announces_reads(lambda rules, **_: [(FirewallState, {"tables": tables_of(rules[4])})])
@operation()
def apply_rules(rules: dict[int, str], rollback_seconds: int) -> Any:
    """
    Put ``rules`` (IP family -> iptables-restore text) live, with the rollback timer armed.

    + rules: the whole rule file per IP family (4 and 6)
    + rollback_seconds: when the timer restores the rules live before this operation
    """
    tables = tables_of(rules[4])
    current = host.get_fact(FirewallState, tables=tables)
    changed = [family for family in FAMILIES if current[family].file_sha != sha256_of(rules[family])]
    drifted = [family for family in FAMILIES if family not in changed and current[family].drifted]
    if not changed and not drifted:
        host.noop("the firewall rules are saved and live as configured")
        return
    if state.config.DIFF:
        for family in changed:
            old = host.get_fact(FileContents, path=RULE_FILES[family]) if current[family].file_sha else None
            print_diff(RULE_FILES[family], old, rules[family])
    for family in drifted:
        host.log(f"Live IPv{family} rules differ from {RULE_FILES[family]}: applying them again")

    yield StringCommand(f"install -d -m 700 {RULE_DIR} && install -d -m 700 {STATE_DIR}")
    for family in FAMILIES:
        yield upload_text(candidate(family), rules[family])
    candidates = " ".join(shlex.quote(candidate(family)) for family in FAMILIES)
    tests = " && ".join(f"{RESTORE[family]} --test {shlex.quote(candidate(family))}" for family in FAMILIES)
    snapshots = "; ".join(
        f"{{ printf %s {shlex.quote(EMPTY_TABLES)}; {SAVE[family]}; }} > {STATE_DIR}/rollback.v{family}"
        for family in FAMILIES
    )
    go_live = " && ".join(f"{RESTORE[family]} {shlex.quote(candidate(family))}" for family in FAMILIES)
    units = f"{ROLLBACK_UNIT}.timer {ROLLBACK_UNIT}.service"
    yield StringCommand(
        f"chmod 640 {candidates} && if ! {{ {tests}; }}; then rm -f {candidates}; "
        "echo 'hardening: the new firewall rules failed iptables-restore --test; nothing was changed' >&2; "
        f"exit 1; fi; "
        f"{snapshots} && "
        f"{{ systemctl stop {units}; systemctl reset-failed {units}; }} 2>/dev/null; "
        f"systemd-run --quiet --unit={ROLLBACK_UNIT} --on-active={rollback_seconds}s "
        f"--timer-property=AccuracySec=1s --description='pyinfra-hardening: undo unconfirmed firewall rules' "
        f"/bin/sh -c {shlex.quote(_restore_previous())} || exit 1; "
        f"if ! {{ {go_live}; }}; then {_restore_previous()}; systemctl stop {ROLLBACK_UNIT}.timer; "
        "echo 'hardening: loading the new firewall rules failed; the previous ones are back' >&2; exit 1; fi"
    )


@operation(is_idempotent=False)
def persist_rules(tables: tuple[str, ...]) -> Any:
    """
    Save the confirmed live rules for the next boot and disarm the rollback timer. Refuses
    if the timer has already fired: the confirmation came too late and the old rules are back.
    Call it with ``_if`` (after ``apply_rules`` changed something).

    + tables: the tables the rule files replace
    """
    moves = " && ".join(f"mv -f {shlex.quote(candidate(family))} {RULE_FILES[family]}" for family in FAMILIES)
    records = " && ".join(
        f"{live_rules(family, tables)} | sha256sum | cut -c1-64 > {STATE_DIR}/applied.v{family}" for family in FAMILIES
    )
    yield StringCommand(
        f"if ! systemctl is-active --quiet {ROLLBACK_UNIT}.timer; then "
        "echo 'hardening: the rollback timer fired before the rules were confirmed; the previous rules are "
        "live again and nothing was saved. Re-run, or raise firewall_rollback_seconds' >&2; exit 1; fi; "
        f"systemctl stop {ROLLBACK_UNIT}.timer && {moves} && {records}"
    )


def confirm_ssh_gets_through(address: str, port: int, rollback_seconds: int) -> None:
    """From the operator's machine: a new SSH connection (TCP, then the key exchange) must pass."""
    try:
        open_transport(address, port, attempts=CONFIRM_ATTEMPTS, connect_timeout=CONFIRM_TIMEOUT).close()
    except (paramiko.SSHException, OSError) as error:
        raise OperationError(
            f"a fresh SSH connection to {address}:{port} did not get through the new firewall rules (no SSH "
            f"key exchange in {CONFIRM_ATTEMPTS} tries: {error}). They were not saved, and the previous "
            f"rules come back by themselves within {rollback_seconds} s. Check admin_cidrs and private_ip, then "
            "re-run."
        ) from None


# --- the deploy ----------------------------------------------------------------------------------


def _refuse_lockout(settings: FirewallPlan, opened: list[Opening], ssh_ports: list[int]) -> None:
    """Stop before anything changes when the rules would shut out this very run."""
    operator = host.get_fact(OperatorAddress, _sudo=False)
    ssh = [opening for opening in opened if opening.port in ssh_ports]
    if operator and not any(opening.admits(operator) for opening in ssh):
        allowed = ", ".join(sorted({source for opening in ssh for source in opening.sources or ()})) or "nobody"
        raise OperationError(
            f"{host.name}: the firewall would admit SSH only from {allowed}, but this run connects from "
            f"{operator}. Add your network to admin_cidrs (or reach this host through an app server "
            "with ProxyJump), then re-run. Nothing was changed."
        )


@deploy("Firewall")
def firewall() -> None:
    """
    Default-drop iptables rules for IPv4 and IPv6, opened per role from the inventory, applied
    with a rollback timer that a fresh SSH connection must disarm (see the module's docstring).
    Nothing with ``firewall = False``.

    Example:

    .. code:: python

        from pyinfra_hardening import firewall
        firewall.firewall()
    """
    if not settings_for(host, FirewallSettings).firewall:
        return
    ensure_packages("Install iptables and netfilter-persistent", ["iptables", "iptables-persistent"])
    # The rules say what the host exposes: root's to read (the package makes the folder 755).
    directory(name=f"{RULE_DIR} is root's alone", path=RULE_DIR, user="root", group="root", mode="700")
    ssh_ports = host.get_fact(SshdPorts)
    if not ssh_ports:
        raise OperationError(f"{host.name}: could not read sshd's port from `sshd -T`; is sshd's configuration valid?")
    plan = plan_for(host)
    opened = openings(plan, ssh_ports)
    _refuse_lockout(plan, opened, ssh_ports)
    apply_firewall({family: ruleset(plan, family, opened) for family in FAMILIES})
    services.unit_running(
        name="netfilter-persistent loads the saved rules at boot", unit="netfilter-persistent", running=None
    )


def apply_firewall(rules: dict[int, str]) -> None:
    """The three steps of a change; each after the first runs only if the rules changed."""
    rollback_seconds = settings_for(host, FirewallSettings).firewall_rollback_seconds
    applied = apply_rules(
        name="Firewall: test the rules, arm the rollback timer, go live", rules=rules, rollback_seconds=rollback_seconds
    )
    address, port = fleet.ssh_address(host)
    python.call(
        name="Firewall: prove a fresh SSH connection gets through",
        function=confirm_ssh_gets_through,
        address=address,
        port=port,
        rollback_seconds=rollback_seconds,
        _if=any_changed(applied),
    )
    persist_rules(
        name="Firewall: save the rules for boot, disarm the rollback timer",
        tables=tables_of(rules[4]),
        _if=any_changed(applied),
    )
