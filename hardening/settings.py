"""The one settings layer: reads a host's data once, validates it, and holds every default.

Deploys call :func:`settings_for` first. The first call validates every host in the inventory,
so a typo on any host stops the whole run before a single operation is planned, with one message
naming each host, key, value and fix.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from secrets import token_urlsafe
from typing import Any, Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pyinfra.api.arguments import all_argument_meta
from pyinfra.api.exceptions import PyinfraError
from pyinfra.connectors.ssh import SSHConnector

from . import secrets, totp
from .secrets import Secret

# --- the knobs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Knob:
    """One data key: its default, the check its value must pass, and why it exists."""

    key: str
    default: Any
    check: Callable[[Any], str | None]
    reason: str
    group: str = "all"  # the group_data file that documents it


USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
# crypt(3) formats shadow accepts on Debian/Ubuntu: yescrypt, SHA-512, SHA-256, bcrypt.
PASSWORD_HASH_RE = re.compile(r"^\$(y|gy|6|5|2[aby])\$[./A-Za-z0-9$=,]{20,}$")
TIME_SYNC_SERVICES = ("systemd-timesyncd", "chrony")
EMAIL_RE = re.compile(r"^[^@\s\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9.:-]+$")
SQL_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,32}$")
CLOCK_TIME_RE = re.compile(r"^(\d\d):(\d\d)$")
MIN_BACKUP_KEY_BITS = 3072
# How monit talks to the mail server: STARTTLS (submission, 587), TLS from the start (465), or plain.
SMTP_SECURITY = ("starttls", "tls", "none")
MONIT_STARTTLS_PORTS = (25, 587)
# Data keys that name a secret: `_sudo_password`, `ssh_password`, `smtp_password`, `api_token`...
SECRET_KEY_RE = re.compile(r"(pass(word|wd|phrase)|secret|token|private_key)$", re.IGNORECASE)
# Where each secret pyinfra could take from data belongs instead.
SECRET_FIXES = {
    "_sudo_password": "delete it there; put admin NAME's password in {admin_password}: pyinfra sudoes "
    "with it when a run connects as NAME",
    "ssh_password": "delete it there; log in with a key (ssh_key), or type it with --ssh-password-prompt",
    "ssh_key_password": "delete it there; load the key into ssh-agent, or pass --key-password on the command line",
    "app_database_password": "delete it there; the application's database password lives in {app_database_password}",
}


def _is_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be True or False (a Python bool, unquoted)"


def _username(value: Any) -> str | None:
    if isinstance(value, str) and USERNAME_RE.match(value):
        return None
    return "must be a lowercase login name: a letter or _, then up to 31 of a-z 0-9 _ -"


def _int_between(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return None
        return f"must be a whole number from {low} to {high}"

    return check


_port = _int_between(1, 65535)


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(map(repr, choices))}"

    return check


def _private_ip(value: Any) -> str | None:
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return "is not an IP address"
    if address.is_unspecified or address.is_loopback:
        return "is not one host's address on a network (services would listen everywhere, or nowhere reachable)"
    if not address.is_private:
        return "is a public address; give the host's private (internal network) address"
    return None


def _cidr_list(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)):
        return "must be a list of networks such as ['10.0.0.0/24']"
    for item in value:
        try:
            ipaddress.ip_network(item, strict=True)
        except ValueError as error:
            return f"has {item!r}, which is not a network ({error})"
    return None


def _optional_email(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and EMAIL_RE.match(value)):
        return None
    return "must be an email address like ops@example.com (or None)"


def _optional_hostname(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and HOSTNAME_RE.match(value)):
        return None
    return "must be a host name or IP address like smtp.example.com (or None)"


def _optional_login(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value and not set(value) & set('"\\ \t\n')):
        return None
    return "must be a user name without spaces or quotes (or None)"


def _address_list(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)):
        return "must be a list of IP addresses such as ['203.0.113.7']"
    for item in value:
        try:
            ipaddress.ip_address(item)
        except ValueError:
            return f"has {item!r}, which is not a single IP address"
    return None


def _sql_name(value: Any) -> str | None:
    if isinstance(value, str) and SQL_NAME_RE.match(value) and value != "root":
        return None
    return "must be 1 to 32 of A-Z a-z 0-9 _ (and not root)"


def _clock_time(value: Any) -> str | None:
    match = isinstance(value, str) and CLOCK_TIME_RE.match(value)
    if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
        return None
    return "must be a time of day as 'HH:MM' (24-hour clock), like '00:01'"


def _port_list(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)) or any(_port(item) for item in value):
        return "must be a list of TCP ports, each a whole number from 1 to 65535"
    if len(set(value)) != len(value):
        return "lists a port twice"
    return None


def _redirects(value: Any) -> str | None:
    if not isinstance(value, dict) or any(_port(port) for pair in value.items() for port in pair):
        return "must map a public port to the application's port, like {80: 3000, 443: 3003}"
    return None


def _ssh_key_problem(key: Any) -> str | None:
    if not isinstance(key, str):
        return "is not a string"
    if "PRIVATE KEY" in key:
        return "is a PRIVATE key; give the public half (the .pub file) and keep this one secret"
    parts = key.split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        return f"does not start with a public key type ({', '.join(SSH_KEY_TYPES[:2])}, ...)"
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return "has a key body that is not base64"
    name_length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + name_length].decode(errors="replace") != parts[0]:
        return "has a key body that does not match its type (truncated or mixed up?)"
    return None


def _username_list(value: Any) -> str | None:
    if isinstance(value, (list, tuple)) and all(not _username(item) for item in value):
        return None
    return "must be a list of lowercase login or group names"


def _optional_username(value: Any) -> str | None:
    return None if value is None else _username(value)


def _optional_path(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "must be a file path (a string) or None"


def _admin_users(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)):
        return "must be a list like [{'name': 'alice', 'ssh_keys': ['ssh-ed25519 AAAA... alice']}]"
    seen = set()
    for entry in value:
        if not isinstance(entry, dict):
            return f"has {entry!r}; each admin is a dict with 'name' and 'ssh_keys'"
        unknown = set(entry) - {"name", "ssh_keys", "two_factor"}
        if unknown:
            return f"has unknown field(s) {sorted(unknown)} for an admin; allowed: name, ssh_keys, two_factor"
        if not isinstance(entry.get("two_factor", True), bool):
            return f"gives admin {entry.get('name')!r} a two_factor that is not True or False"
        name = entry.get("name")
        if _username(name) or name == "root":
            return f"has admin name {name!r}; it must be a lowercase login name other than root"
        if name in seen:
            return f"lists admin {name!r} twice"
        seen.add(name)
        keys = entry.get("ssh_keys")
        if not keys or not isinstance(keys, (list, tuple)):
            return f"gives admin {name!r} no SSH public key; add 'ssh_keys': ['ssh-ed25519 ...']"
        for key in keys:
            problem = _ssh_key_problem(key)
            if problem:
                return f"has an SSH key for {name!r} that {problem}"
    return None


KNOBS: tuple[Knob, ...] = (
    Knob("admin_users", [], _admin_users,
         "people who administer the host: sudo group, bash, their SSH keys (guide 3.6, 3.7)"),
    Knob("admin_group", "sudo", _username,
         "group whose members may sudo, always with their password (guide 3.5)"),
    Knob("sudo_require_password", True, _is_bool,
         "remove every NOPASSWD rule so a stolen login alone cannot become root (guide 3.5)"),
    Knob("lock_root_password", True, _is_bool,
         "no password can log in as root; admins use sudo (guide 3.9)"),
    Knob("password_retry", 3, _int_between(1, 10),
         "tries to type an acceptable new password (guide 3.4)"),
    Knob("password_minlen", 10, _int_between(8, 128),
         "minimum length of a new password (guide 3.4)"),
    Knob("password_difok", 3, _int_between(0, 64),
         "characters that must differ from the old password (guide 3.4)"),
    Knob("password_ucredit", -1, _int_between(-10, 10),
         "negative: at least that many uppercase letters (guide 3.4)"),
    Knob("password_lcredit", -2, _int_between(-10, 10),
         "negative: at least that many lowercase letters (guide 3.4)"),
    Knob("password_dcredit", -1, _int_between(-10, 10),
         "negative: at least that many digits (guide 3.4)"),
    Knob("password_ocredit", -1, _int_between(-10, 10),
         "negative: at least that many symbols (guide 3.4)"),
    Knob("time_sync_service", "systemd-timesyncd", _one_of(*TIME_SYNC_SERVICES),
         "keeps the clock right; TOTP codes and logs depend on it"),
    Knob("private_ip", None, _private_ip,
         "this host's private-network address, set per host; firewall and database rules use it"),
    Knob("admin_cidrs", [], _cidr_list,
         "networks the operators connect from; SSH is open to them (on app servers: only to them, if set)"),
    Knob("firewall", True, _is_bool,
         "default-drop iptables rules, IPv4 and IPv6; off only where a cloud firewall does it (guide 3.11)"),
    Knob("firewall_rollback_seconds", 60, _int_between(30, 600),
         "new rules are undone after this long unless a fresh SSH connection confirms them"),
    Knob("login_alerts", True, _is_bool,
         "Monit tells you of every SSH login, by email and/or webhook (guide 3.12)"),
    Knob("monit_check_interval", 5, _int_between(1, 300),
         "seconds between Monit's looks at the auth log: how soon an alert goes out (guide 3.12)"),
    Knob("alert_email", None, _optional_email,
         "address that gets an email for every SSH login (needs smtp_host)"),
    Knob("smtp_host", None, _optional_hostname,
         "mail server Monit sends alerts through"),
    Knob("smtp_port", 587, _port,
         "its port: 587 for submission with STARTTLS, 465 for TLS from the start"),
    Knob("smtp_security", "starttls", _one_of(*SMTP_SECURITY),
         "encryption to the mail server; 'none' only without a password"),
    Knob("smtp_verify_certificate", True, _is_bool,
         "verify the mail server's certificate with the system CAs (no password for impostors)"),
    Knob("smtp_user", None, _optional_login,
         "login at the mail server; its password is the secret smtp-password"),
    Knob("alert_ignore_addresses", [], _address_list,
         "logins from these source addresses raise no alert (the guide's ignore list)"),
    Knob("alert_webhook", False, _is_bool,
         "also post each login as Slack-style JSON to the URL in the secret alert-webhook-url"),
    Knob("alert_pushover", False, _is_bool,
         "also push each login through Pushover (secrets pushover-app-token, pushover-user-key)"),
    Knob("ssh_two_factor", True, _is_bool,
         "SSH needs the key and a TOTP code from the admin's phone (guide 3.10)"),
    Knob("ssh_two_factor_strict", False, _is_bool,
         "refuse admins not enrolled yet (otherwise they log in with key + password)"),
    Knob("ssh_strong_crypto", True, _is_bool,
         "only the ciphers, key exchanges, MACs and host keys of ssh-audit's hardened policy"),
    Knob("ssh_allow_users", [], _username_list,
         "if set, only these users may log in over SSH (every admin must be listed)"),
    Knob("ssh_allow_groups", [], _username_list,
         "if set, only members of these groups may log in over SSH (admin_group must be listed)"),
    Knob("ssh_probe_user", None, _optional_username,
         "admin whose fresh login proves access before password and root login are turned off"),
    Knob("ssh_probe_key", None, _optional_path,
         "that admin's private key on the operator's machine (default: the key pyinfra connects with)"),
    Knob("app_user", "application", _username,
         "locked account the application runs as: no home, no shell, no password (guide 4.1)",
         group="app_servers"),
    Knob("app_tcp_ports", [80, 443, 3000, 3003], _port_list,
         "TCP ports the application serves to everyone, besides SSH (guide 3.11)", group="app_servers"),
    Knob("app_port_redirects", {80: 3000, 443: 3003}, _redirects,
         "public ports sent on to the unprivileged application (guide 3.11)", group="app_servers"),
    Knob("database_port", 3306, _port,
         "the database's TCP port; only the app servers' private addresses may reach it (guide 3.11)",
         group="db_servers"),
    Knob("app_database", "application", _sql_name,
         "the application's database (guide 4.6)", group="db_servers"),
    Knob("app_database_user", "application", _sql_name,
         "its account: SELECT, INSERT, UPDATE, DELETE there, from app servers only (4.6)",
         group="db_servers"),
    Knob("backups", True, _is_bool,
         "nightly encrypted backup of the application's database, copied to the backup servers (guide 3.11.2)",
         group="db_servers"),
    Knob("backup_public_key", "keys/backup-public.pem", _optional_path,
         "your RSA public key backups are encrypted to (hardening-backup keygen)",
         group="db_servers"),
    Knob("backup_time", "00:01", _clock_time,
         "when the nightly backup runs, server time (guide 3.11.2)", group="db_servers"),
    Knob("backup_keep", 7, _int_between(1, 1000),
         "how many backups the database server keeps, newest first", group="db_servers"),
    Knob("backup_server_ssh_port", 22, _port,
         "the port of the backup servers' sshd on the private network", group="db_servers"),
    Knob("offsite_backup_keep", 30, _int_between(1, 10000),
         "how many backups of each database server a backup server keeps, newest first",
         group="backup_servers"),
)
KNOB_BY_KEY = {knob.key: knob for knob in KNOBS}

# Keys pyinfra itself reads from host data; never flagged as typos.
PYINFRA_KEYS = set(SSHConnector.data_meta) | set(all_argument_meta)
CONNECTION_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "ssh_user": _username,
    "ssh_port": _port,
}
# The inventory groups of the three server roles (deploys/<role>_server.py act on their group).
APP_SERVERS, DB_SERVERS, BACKUP_SERVERS = "app_servers", "db_servers", "backup_servers"
ROLE_GROUPS = (APP_SERVERS, DB_SERVERS, BACKUP_SERVERS)


# --- the typed settings --------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminUser:
    name: str
    ssh_keys: tuple[str, ...]
    password_hash: Secret
    # Only known where the operator's store has it; pyinfra needs it to sudo as this admin.
    sudo_password: Secret | None
    two_factor: bool
    # Present when two_factor is on: from the store, generated there on first use.
    totp_secret: Secret | None
    totp_scratch_codes: Secret | None


@dataclass(frozen=True)
class PasswordPolicy:
    retry: int
    minlen: int
    difok: int
    ucredit: int
    lcredit: int
    dcredit: int
    ocredit: int

    def module_arguments(self) -> str:
        """The arguments pam_pwquality and pam_cracklib both understand, in the guide's order."""
        return " ".join(
            f"{name}={getattr(self, name)}"
            for name in ("retry", "minlen", "difok", "ucredit", "lcredit", "dcredit", "ocredit")
        )


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str  # one of SMTP_SECURITY
    verify_certificate: bool
    user: str | None
    password: Secret | None


@dataclass(frozen=True)
class LoginAlerts:
    """Who hears of an SSH login, and how (guide 3.12)."""

    check_interval: int
    email: str | None
    smtp: SmtpServer | None  # set whenever email is
    ignore_addresses: tuple[str, ...]
    webhook_url: Secret | None
    pushover: tuple[Secret, Secret] | None  # application token, user key

    @property
    def pushes(self) -> bool:
        return bool(self.webhook_url or self.pushover)


@dataclass(frozen=True)
class Database:
    """MariaDB on a database server, and the application's account (guide 3.11.1, 4.6)."""

    port: int
    bind_address: str  # the host's private address, never 0.0.0.0
    name: str
    user: str
    password: Secret
    app_hosts: tuple[str, ...]  # the app servers' private addresses: where the account may connect from


@dataclass(frozen=True)
class Backups:
    """The database server's nightly encrypted backup (guide 3.11.2)."""

    database: str
    dump_password: Secret  # of the dump account, which may only read the database
    public_key: str  # PEM of the operator's RSA key; its private half never leaves the operator
    time: tuple[int, int]  # hour, minute
    keep: int
    ssh_key: Secret  # OpenSSH private key this server copies offsite with
    destinations: tuple[str, ...]  # the backup servers' private addresses
    ssh_port: int


@dataclass(frozen=True)
class BackupReceiver:
    """A backup server's drop box for the database servers' backups."""

    ssh_public_key: str  # the public half of the database servers' backup key
    sources: tuple[str, ...]  # the database servers' private addresses
    keep: int


@dataclass(frozen=True)
class Settings:
    host_name: str
    connect_user: str
    admin_users: tuple[AdminUser, ...]
    admin_group: str
    sudo_require_password: bool
    lock_root_password: bool
    password_policy: PasswordPolicy
    time_sync_service: str
    private_ip: str | None
    admin_cidrs: tuple[str, ...]
    app_user: str
    ssh_two_factor: bool
    ssh_two_factor_strict: bool
    ssh_strong_crypto: bool
    ssh_allow_users: tuple[str, ...]
    ssh_allow_groups: tuple[str, ...]
    login_alerts: LoginAlerts | None  # None: no login alerts
    roles: tuple[str, ...]  # the role groups this host is in
    firewall: bool
    firewall_rollback_seconds: int
    app_tcp_ports: tuple[int, ...]
    app_port_redirects: tuple[tuple[int, int], ...]
    database_port: int
    # Private addresses of the inventory's app and database servers: who may reach whom.
    app_server_ips: tuple[str, ...]
    db_server_ips: tuple[str, ...]
    database: Database | None  # on database servers
    backups: Backups | None  # on database servers with backups on
    backup_receiver: BackupReceiver | None  # on backup servers
    # Where the operator's machine reaches this host's sshd, and who proves a fresh login works.
    ssh_address: str
    ssh_port: int
    probe_user: str  # there is always an admin: an empty admin_users is refused
    probe_key: str | None

    def admin(self, name: str) -> AdminUser | None:
        return next((admin for admin in self.admin_users if admin.name == name), None)

    def admins_without_two_factor(self) -> list[str]:
        """Admins who log in with key + password until they enroll (empty when 2FA is off)."""
        if not self.ssh_two_factor:
            return []
        return [admin.name for admin in self.admin_users if not admin.two_factor]


# --- validation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    host: str
    key: str
    value: Any
    what: str
    fix: str

    def __str__(self) -> str:
        shown = "*MASKED*" if SECRET_KEY_RE.search(self.key) else repr(self.value)
        return f"  host {self.host}: {self.key} = {shown} {self.what}.\n    fix: {self.fix}"


class SettingsError(PyinfraError):
    """Bad host data; raised before any operation is planned on any host."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(str(problem) for problem in problems)
        super().__init__(f"invalid settings, nothing was changed on any host:\n{lines}")


def _committed_layers(host) -> list[dict]:
    """Host data that came from files (inventory and group_data), not from the CLI."""
    inventory = host.inventory
    return [
        inventory.get_host_data(host.name),
        inventory.get_groups_data(host.groups),
        inventory.get_data(),
    ]


def _plaintext_secrets(host) -> list[Problem]:
    problems = []
    for layer in _committed_layers(host):
        for key, value in layer.items():
            if SECRET_KEY_RE.search(key) and isinstance(value, str) and value:
                fix = SECRET_FIXES.get(key, "delete it there; secrets come only from the secret store "
                                            "(README.md, Secrets)")
                problems.append(Problem(
                    host.name, key, value, "is a plaintext secret in committed host data",
                    fix.format(admin_password=secrets.where(secrets.admin_password_name("NAME")),
                               app_database_password=secrets.where(APP_DATABASE_PASSWORD)),
                ))
    return problems


def _typos(host, data: dict) -> list[Problem]:
    known = set(KNOB_BY_KEY) | PYINFRA_KEYS
    problems = []
    for key in data:
        if key in known or key.startswith("__"):
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
        if close:
            problems.append(Problem(
                host.name, key, data[key], "is not a setting this project knows",
                f"rename it to {close[0]!r} (or remove it)",
            ))
    return problems


def _admin_secrets(host, name: str, connect_user: str, require_sudo_password: bool):
    problems = []
    hash_name = f"admin-{name}.password-hash"
    password_name = secrets.admin_password_name(name)
    try:
        password_hash = secrets.lookup(hash_name)
        sudo_password = secrets.lookup(password_name)
    except secrets.SecretStoreError as error:
        return None, None, [Problem(host.name, "admin_users", name, "has an unsafe secret", str(error))]
    if password_hash is None:
        problems.append(Problem(
            host.name, "admin_users", name, "has no password hash, so could not sudo",
            f"put a hash from `openssl passwd -6` in {secrets.where(hash_name)}",
        ))
    elif not PASSWORD_HASH_RE.match(password_hash.reveal()):
        problems.append(Problem(
            host.name, "admin_users", name,
            f"has a password hash in {password_hash.source} that is not a crypt(3) hash",
            "store the output of `openssl passwd -6` or `mkpasswd -m yescrypt`, not the password",
        ))
    if connect_user == name and require_sudo_password and sudo_password is None:
        problems.append(Problem(
            host.name, "ssh_user", name,
            "connects as an admin whose sudo needs a password, but the store has none",
            f"put {name}'s password in {secrets.where(password_name)}",
        ))
    return password_hash, sudo_password, problems


def _build(host) -> tuple[Settings | None, list[Problem]]:
    data = host.data.dict()
    problems = _plaintext_secrets(host) + _typos(host, data)

    values = {}
    for knob in KNOBS:
        value = data.get(knob.key, knob.default)
        problem = knob.check(value)
        if problem:
            problems.append(Problem(
                host.name, knob.key, value, problem, f"see the {knob.key} row in README.md",
            ))
        values[knob.key] = value
    for key, check in CONNECTION_CHECKS.items():
        if key in data and check(data[key]):
            problems.append(Problem(host.name, key, data[key], check(data[key]), "fix the inventory"))
    if problems:
        return None, problems

    connect_user = data.get("ssh_user") or "root"
    admins = []
    for entry in values["admin_users"]:
        password_hash, sudo_password, admin_problems = _admin_secrets(
            host, entry["name"], connect_user, values["sudo_require_password"]
        )
        problems += admin_problems
        two_factor = entry.get("two_factor", True)
        totp_secret = totp_scratch = None
        if values["ssh_two_factor"] and two_factor:
            totp_secret, totp_scratch = totp.enroll(entry["name"])
            problem = totp.problem_with(totp_secret, totp_scratch)
            if problem:
                problems.append(Problem(host.name, "admin_users", entry["name"], f"has a bad secret: {problem}",
                                        "delete both TOTP files of this admin from the store to generate new ones"))
        admins.append(AdminUser(
            entry["name"], tuple(entry["ssh_keys"]), password_hash, sudo_password,
            two_factor, totp_secret, totp_scratch,
        ))
    admin_names = [admin.name for admin in admins]
    problems += _ssh_access_problems(host, values, admin_names, data)

    if not admins and (values["sudo_require_password"] or values["lock_root_password"]):
        problems.append(Problem(
            host.name, "admin_users", [],
            "is empty, so locking root or sudo would leave nobody able to administer the host",
            "add at least one admin with an SSH key to group_data/all.py (and a password hash to "
            "the secret store), or set sudo_require_password and lock_root_password to False",
        ))

    policy = PasswordPolicy(**{
        name: values[f"password_{name}"]
        for name in ("retry", "minlen", "difok", "ucredit", "lcredit", "dcredit", "ocredit")
    })
    required = sum(-credit for credit in (policy.ucredit, policy.lcredit, policy.dcredit, policy.ocredit) if credit < 0)
    if required > policy.minlen:
        problems.append(Problem(
            host.name, "password_minlen", policy.minlen,
            f"is shorter than the {required} characters the credits require",
            f"raise password_minlen to at least {required} or relax the credits",
        ))
    if policy.difok > policy.minlen:
        problems.append(Problem(
            host.name, "password_difok", policy.difok, "is larger than password_minlen",
            "use a value no larger than password_minlen",
        ))
    problems += _firewall_problems(host, values)
    login_alerts, alert_problems = _login_alerts(host, values)
    problems += alert_problems
    database, backups, receiver, backup_problems = _database_and_backups(host, values)
    problems += backup_problems
    if problems:
        return None, problems

    return Settings(
        host_name=host.name,
        connect_user=connect_user,
        admin_users=tuple(admins),
        admin_group=values["admin_group"],
        sudo_require_password=values["sudo_require_password"],
        lock_root_password=values["lock_root_password"],
        password_policy=policy,
        time_sync_service=values["time_sync_service"],
        private_ip=values["private_ip"],
        admin_cidrs=tuple(values["admin_cidrs"]),
        app_user=values["app_user"],
        ssh_two_factor=values["ssh_two_factor"],
        ssh_two_factor_strict=values["ssh_two_factor_strict"],
        ssh_strong_crypto=values["ssh_strong_crypto"],
        ssh_allow_users=tuple(values["ssh_allow_users"]),
        ssh_allow_groups=tuple(values["ssh_allow_groups"]),
        login_alerts=login_alerts,
        roles=tuple(group for group in ROLE_GROUPS if group in host.groups),
        firewall=values["firewall"],
        firewall_rollback_seconds=values["firewall_rollback_seconds"],
        app_tcp_ports=tuple(values["app_tcp_ports"]),
        app_port_redirects=tuple(sorted(values["app_port_redirects"].items())),
        database_port=values["database_port"],
        app_server_ips=_private_ips(host.inventory, APP_SERVERS),
        db_server_ips=_private_ips(host.inventory, DB_SERVERS),
        database=database,
        backups=backups,
        backup_receiver=receiver,
        ssh_address=data.get("ssh_hostname") or host.name,
        ssh_port=data.get("ssh_port") or 22,
        probe_user=values["ssh_probe_user"] or admin_names[0],
        probe_key=_expanded(values["ssh_probe_key"] or data.get("ssh_key")),
    ), []


def _ssh_access_problems(host, values: dict, admin_names: list[str], data: dict) -> list[Problem]:
    """Settings that would let the SSH hardening shut every admin out."""
    problems = []
    if not admin_names:
        problems.append(Problem(
            host.name, "admin_users", [], "is empty, but SSH will take only admins' keys: nobody could log in",
            "add at least one admin with an SSH key to group_data/all.py",
        ))
    allow_users = values["ssh_allow_users"]
    missing = [name for name in admin_names if allow_users and name not in allow_users]
    if missing:
        problems.append(Problem(
            host.name, "ssh_allow_users", allow_users, f"leaves out admin(s) {', '.join(missing)}",
            "add every admin to ssh_allow_users (or leave it empty)",
        ))
    allow_groups = values["ssh_allow_groups"]
    if allow_groups and values["admin_group"] not in allow_groups:
        problems.append(Problem(
            host.name, "ssh_allow_groups", allow_groups, f"leaves out admin_group {values['admin_group']!r}",
            "add admin_group to ssh_allow_groups (or leave it empty)",
        ))
    probe_user = values["ssh_probe_user"]
    if probe_user is not None and probe_user not in admin_names:
        problems.append(Problem(
            host.name, "ssh_probe_user", probe_user, "is not one of admin_users",
            "name an admin whose private key is on this machine",
        ))
    probe_key = values["ssh_probe_key"] or data.get("ssh_key")
    if probe_key is not None and not Path(probe_key).expanduser().is_file():
        problems.append(Problem(
            host.name, "ssh_probe_key" if values["ssh_probe_key"] else "ssh_key", probe_key,
            "is not a file on this machine", "give the path of the admin's private key",
        ))
    return problems


SMTP_PASSWORD = "smtp-password"
WEBHOOK_URL = "alert-webhook-url"
PUSHOVER_SECRETS = ("pushover-app-token", "pushover-user-key")


def _stored(host, name: str, needed_for: str, problems: list[Problem], key: str, value: Any) -> Secret | None:
    """A secret the settings need, or a problem saying where to put it. Monit's configuration
    quotes values with double quotes, so a secret may not contain one."""
    try:
        secret = secrets.lookup(name)
    except secrets.SecretStoreError as error:
        problems.append(Problem(host.name, key, value, "has an unsafe secret", str(error)))
        return None
    if secret is None:
        problems.append(Problem(host.name, key, value, f"needs {needed_for}, which the secret store lacks",
                                f"put it in {secrets.where(name)}"))
    elif '"' in secret.reveal() or "\n" in secret.reveal():
        problems.append(Problem(host.name, key, value, f"needs {needed_for}, but {secret.source} holds a "
                                "double quote or a line break", "store the value alone, unquoted, on one line"))
        return None
    return secret


def _login_alerts(host, values: dict) -> tuple[LoginAlerts | None, list[Problem]]:
    if not values["login_alerts"]:
        return None, []
    problems: list[Problem] = []
    email, smtp = values["alert_email"], None
    if email and not values["smtp_host"]:
        problems.append(Problem(host.name, "smtp_host", None, f"is not set, so no mail could reach {email}",
                                "set smtp_host (and smtp_user, with its password in the secret store)"))
    elif email:
        user = values["smtp_user"]
        password = _stored(host, SMTP_PASSWORD, "the SMTP password", problems, "smtp_user", user) if user else None
        starttls_port = values["smtp_port"] in MONIT_STARTTLS_PORTS
        if (values["smtp_security"] == "starttls") != starttls_port and values["smtp_security"] != "none":
            problems.append(Problem(
                host.name, "smtp_security", values["smtp_security"],
                f"does not fit smtp_port {values['smtp_port']}: Monit speaks STARTTLS on ports 25 and 587 only, "
                "and TLS from the first byte on any other",
                "use 'starttls' with port 587 (or 25), 'tls' with port 465",
            ))
        if user and values["smtp_security"] == "none":
            problems.append(Problem(
                host.name, "smtp_security", "none", "would send the SMTP password unencrypted",
                "use 'starttls' (port 587) or 'tls' (port 465)",
            ))
        smtp = SmtpServer(values["smtp_host"], values["smtp_port"], values["smtp_security"],
                          values["smtp_verify_certificate"], user, password)
    webhook = pushover = None
    if values["alert_webhook"]:
        webhook = _stored(host, WEBHOOK_URL, "the webhook URL", problems, "alert_webhook", True)
        if webhook and not re.match(r"^https?://\S+$", webhook.reveal()):
            problems.append(Problem(host.name, "alert_webhook", True, f"has a URL in {webhook.source} that is "
                                    "not http(s)://...", "store the whole URL the chat service gave you"))
    if values["alert_pushover"]:
        token, user_key = (_stored(host, name, name, problems, "alert_pushover", True) for name in PUSHOVER_SECRETS)
        pushover = (token, user_key) if token and user_key else None
    if not (email or values["alert_webhook"] or values["alert_pushover"]):
        problems.append(Problem(
            host.name, "login_alerts", True, "is on, but nobody would hear of an SSH login",
            "set alert_email and smtp_host (and/or alert_webhook, alert_pushover), or login_alerts = False",
        ))
    alerts = LoginAlerts(values["monit_check_interval"], email, smtp, tuple(values["alert_ignore_addresses"]),
                         webhook, pushover)
    return alerts, problems


APP_DATABASE_PASSWORD = "app-database-password"
BACKUP_DUMP_PASSWORD = "backup-dump-password"
BACKUP_SSH_KEY = "backup-ssh-key"


def _random_password() -> str:
    return token_urlsafe(24)


def _new_ssh_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption()).decode()


def _backup_ssh_key() -> tuple[Secret, str]:
    """The database servers' key for the backup servers (generated into the store once), and its
    public line. Raises ValueError for a stored value that is not an OpenSSH private key."""
    private = secrets.generated(BACKUP_SSH_KEY, _new_ssh_key)
    key = serialization.load_ssh_private_key(private.reveal().encode() + b"\n", password=None)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} db-backup@pyinfra-hardening"


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


def _needs_private_ip(host, values: dict, why: str) -> list[Problem]:
    if values["private_ip"] is not None:
        return []
    return [Problem(host.name, "private_ip", None, f"is not set, but {why}",
                    "set this host's private_ip in the inventory (its address on the internal network)")]


def _database(host, values: dict) -> tuple[Database | None, list[Problem]]:
    problems = _needs_private_ip(host, values, "MariaDB listens only on the private address")
    try:
        password = secrets.generated(APP_DATABASE_PASSWORD, _random_password)
    except secrets.SecretStoreError as error:
        return None, [*problems, Problem(host.name, "app_database_user", values["app_database_user"],
                                         "has an unsafe secret", str(error))]
    return Database(values["database_port"], values["private_ip"], values["app_database"],
                    values["app_database_user"], password, _private_ips(host.inventory, APP_SERVERS)), problems


def _backups(host, values: dict) -> tuple[Backups | None, list[Problem]]:
    key_path = values["backup_public_key"]
    key_problem = (backup_public_key_problem(Path(key_path).expanduser()) if key_path
                   else "is not set, so backups could not be encrypted")
    if key_problem:
        return None, [Problem(
            host.name, "backup_public_key", key_path, key_problem,
            "make a key pair on your machine with `hardening-backup keygen --private-key PATH "
            "--public-key keys/backup-public.pem`, keep the private key off the servers, and set "
            "backup_public_key to the public one (or backups = False)",
        )]
    try:
        ssh_key, _ = _backup_ssh_key()
        dump_password = secrets.generated(BACKUP_DUMP_PASSWORD, _random_password)
    except secrets.SecretStoreError as error:
        return None, [Problem(host.name, "backups", True, "has an unsafe secret", str(error))]
    except ValueError:
        return None, [Problem(host.name, "backups", True, f"needs the key in {secrets.where(BACKUP_SSH_KEY)}, "
                              "which is not an OpenSSH private key", "delete it to have a new one generated")]
    if set(dump_password.reveal()) & set('"\\\n'):
        return None, [Problem(
            host.name, "backups", True, f"needs the dump password in {dump_password.source}, which holds "
            "a double quote or a backslash (the option file quotes it)",
            "store a password without them, or delete the file to have one generated",
        )]
    hour, minute = (int(part) for part in values["backup_time"].split(":"))
    return Backups(
        values["app_database"], dump_password, Path(key_path).expanduser().read_text(), (hour, minute),
        values["backup_keep"], ssh_key, _private_ips(host.inventory, BACKUP_SERVERS), values["backup_server_ssh_port"],
    ), []


def _backup_receiver(host, values: dict) -> tuple[BackupReceiver | None, list[Problem]]:
    problems = []
    if host.inventory.get_group(DB_SERVERS, []):
        problems += _needs_private_ip(host, values, "the database servers copy backups to it there")
    try:
        _, public_line = _backup_ssh_key()
    except (secrets.SecretStoreError, ValueError) as error:
        return None, [*problems, Problem(host.name, "offsite_backup_keep", values["offsite_backup_keep"],
                                         f"needs the database servers' backup key, which is unusable ({error})",
                                         f"delete {secrets.where(BACKUP_SSH_KEY)} to have a new one generated")]
    receiver = BackupReceiver(public_line, _private_ips(host.inventory, DB_SERVERS), values["offsite_backup_keep"])
    return receiver, problems


def _database_and_backups(host, values: dict):
    """MariaDB and backups on a database server, the drop box on a backup server."""
    database = backups = receiver = None
    problems: list[Problem] = []
    if DB_SERVERS in host.groups:
        database, found = _database(host, values)
        problems += found
        if values["backups"]:
            backups, found = _backups(host, values)
            problems += found
    if BACKUP_SERVERS in host.groups:
        receiver, found = _backup_receiver(host, values)
        problems += found
    return database, backups, receiver, problems


def _private_ips(inventory, group: str) -> tuple[str, ...]:
    addresses = (peer.data.get("private_ip") for peer in inventory.get_group(group, []))
    return tuple(address for address in addresses if address)


def _firewall_problems(host, values: dict) -> list[Problem]:
    """Firewall data that cannot work: a redirect into a closed port, a peer nobody can name."""
    if not values["firewall"]:
        return []
    problems = []
    if APP_SERVERS in host.groups:
        closed = [f"{public} -> {private}" for public, private in values["app_port_redirects"].items()
                  if private not in values["app_tcp_ports"]]
        if closed:
            problems.append(Problem(
                host.name, "app_port_redirects", values["app_port_redirects"],
                f"redirects into port(s) app_tcp_ports leaves closed ({', '.join(closed)}), so that traffic "
                "would be dropped", "add the target port(s) to app_tcp_ports",
            ))
    # Whose firewall names this host by its private address: (this host's group, the peers' group).
    for group, peers in ((APP_SERVERS, DB_SERVERS), (DB_SERVERS, BACKUP_SERVERS)):
        if group in host.groups and host.inventory.get_group(peers, []):
            problems += _needs_private_ip(host, values, f"the {peers} firewall admits {group} only by their "
                                                        "private address")
    return problems


def _expanded(path: str | None) -> str | None:
    return str(Path(path).expanduser()) if path else None


_validated: dict[str, Settings] = {}


def validate_inventory(inventory) -> dict[str, Settings]:
    """Settings for every host, or one SettingsError naming every problem on every host."""
    problems: list[Problem] = []
    built = {}
    for host in inventory:
        settings, host_problems = _build(host)
        problems += host_problems
        if settings:
            built[host.name] = settings
    if problems:
        raise SettingsError(problems)
    return built


def settings_for(host) -> Settings:
    """The validated settings of ``host``; validates the whole inventory on first use.

    When the run connects as a non-root user, every operation runs through sudo, and when that
    user is an admin pyinfra gets the admin's sudo password from the secret store, masked.
    """
    if host.name not in _validated:
        _validated.update(validate_inventory(host.inventory))
    settings = _validated[host.name]
    if settings.connect_user != "root":
        host.data._sudo = True
        admin = settings.admin(settings.connect_user)
        if admin and admin.sudo_password:
            # pyinfra's own slot for a sudo password; it is passed to sudo masked, via askpass.
            host.connector_data["prompted_sudo_password"] = admin.sudo_password.reveal()
    return settings
