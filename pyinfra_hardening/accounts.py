"""Who administers a host: admin users with their keys and a password hash from the store
(guide 3.6, 3.7), and a locked root (3.9)."""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pyinfra import host
from pyinfra.api import FactBase, QuoteString, StringCommand, deploy, operation
from pyinfra.api.hiddenvalue import HiddenValue
from pyinfra.facts.files import Directory, File
from pyinfra.facts.server import AuthorizedKeys, Groups, Os, Users
from pyinfra.operations import server

from . import access_rules, compat, password_hashes, secret_store
from .data_types import Flag, HostSettings, LoginName, described, refuse
from .managed_files import sha256_of
from .secret_store import Secret
from .settings import Problem, settings_for, stored

if TYPE_CHECKING:
    from pyinfra.api.host import Host

NO_LOGIN_SHELL = "/usr/sbin/nologin"
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
MIN_RSA_KEY_BITS = 3072
# One authorized_keys entry as this project writes it: type, base64 body, optional comment,
# single spaces between them. Options (from=, command=, ...) are not supported.
SSH_KEY_LINE_RE = re.compile(r"(?P<type>[a-z0-9@.-]+) (?P<body>[A-Za-z0-9+/]+={0,2})( [!-~]([ -~]*[!-~])?)?")


def ssh_public_key(key: str) -> str:
    """``key`` if it is exactly one OpenSSH public key line (type, body, optional comment) whose
    body loads as a key of its type and strength; else why not."""
    if "PRIVATE KEY" in key:
        raise ValueError("is a PRIVATE key; give the public half (the .pub file) and keep this one secret")
    words = key.split()
    if words and words[0] in ("ssh-dss", "ssh-dsa"):
        raise ValueError("is a DSA key, which OpenSSH no longer accepts; make one with `ssh-keygen -t ed25519`")
    if words and words[0] not in SSH_KEY_TYPES:
        if any(word in SSH_KEY_TYPES for word in words[1:]):
            raise ValueError("has options before the key type; give only 'TYPE KEY [comment]'")
        raise ValueError(f"does not start with a public key type ({', '.join(SSH_KEY_TYPES[:3])}, ...)")
    try:
        blob = base64.b64decode(words[1] if len(words) > 1 else "", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("has a key body that is not base64") from None
    if any(word in SSH_KEY_TYPES for word in words[2:]):
        raise ValueError("holds more than one key; give each key its own entry in ssh_keys")
    line = SSH_KEY_LINE_RE.fullmatch(key)
    if line is None or not blob:
        raise ValueError("is not 'TYPE KEY [comment]' with single spaces (a tab, a doubled or end space?)")
    name_length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + name_length].decode(errors="replace") != line["type"]:
        raise ValueError("has a key body that does not match its type (truncated or mixed up?)")
    try:
        loaded = serialization.load_ssh_public_key(f"{line['type']} {line['body']}".encode())
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("has a key body that does not load (truncated or corrupted?)") from None
    if isinstance(loaded, rsa.RSAPublicKey) and loaded.key_size < MIN_RSA_KEY_BITS:
        raise ValueError(
            f"is an RSA key of {loaded.key_size} bits; at least {MIN_RSA_KEY_BITS} are needed "
            "(or make an Ed25519 key: `ssh-keygen -t ed25519`)"
        )
    return key


SshPublicKey = Annotated[
    str, described("must be an SSH public key line 'TYPE KEY [comment]' (a string)"), AfterValidator(ssh_public_key)
]


class AdminEntry(BaseModel):
    """One admin in ``admin_users``."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    name: LoginName
    ssh_keys: Annotated[
        list[SshPublicKey],
        described("must be a list of SSH public keys, at least one: 'ssh_keys': ['ssh-ed25519 ...']"),
    ] = Field([], min_length=1, validate_default=True)
    two_factor: Flag = True

    @field_validator("name")
    @classmethod
    def _not_a_system_account(cls, name: str) -> str:
        if name in access_rules.SYSTEM_ACCOUNTS:
            raise ValueError("must be a person's login name, not root's or a system account's")
        return name


class AccountSettings(HostSettings):
    title = "Admins and root"

    admin_users: Annotated[
        list[
            Annotated[AdminEntry, described("must be an entry like {'name': 'alice', 'ssh_keys': ['ssh-ed25519 ...']}")]
        ],
        described(
            "must be a list like [{'name': 'alice', 'ssh_keys': ['ssh-ed25519 AAAA... alice']}]: names no system "
            "account's; each key one 'TYPE KEY [comment]' line of Ed25519, ECDSA, RSA >= 3072 bits or sk-, no options"
        ),
    ] = Field([], description="people who administer the host: sudo group, bash, their SSH keys (guide 3.6, 3.7)")
    admin_group: LoginName = Field(
        "sudo",
        description="group whose members may sudo, always with their password (guide 3.5); "
        "sudo, wheel, admin or a new group, never another system group",
    )
    lock_root_password: Flag = Field(True, description="no password can log in as root; admins use sudo (guide 3.9)")

    @field_validator("admin_group")
    @classmethod
    def _not_a_system_group(cls, group: str) -> str:
        if group in access_rules.SYSTEM_GROUPS and group not in access_rules.ADMIN_GROUPS:
            raise refuse(
                "admin_group",
                "is a system group: its members would gain the admins' sudo, and the admins its files",
                "use sudo (Debian's and Ubuntu's admin group) or a group of your own",
            )
        return group

    @model_validator(mode="after")
    def _each_admin_once(self) -> AccountSettings:
        names = [admin.name for admin in self.admin_users]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise refuse("admin_users", f"lists admin(s) {', '.join(twice)} twice", "list each admin once")
        if self.admin_group in names:
            raise refuse(
                "admin_group",
                "is an admin's own name (their personal group)",
                "name a group for all admins, like 'sudo'",
            )
        return self

    def problems(self, host: Host) -> list[Problem]:
        _, problems = resolve_admins(host, self)
        for entry in self.admin_users:
            problems += access_rules.existing_account_problems(host, "admin_users", entry.name, person=True)
        problems += access_rules.existing_group_problems(host, self.admin_group)
        if self.lock_root_password:
            problems += access_rules.nobody_left(host, self, "locking root")
        return problems


@dataclass(frozen=True)
class Admin:
    name: str
    ssh_keys: tuple[str, ...]
    password_hash: Secret
    # Only known where the operator's store has it; pyinfra needs it to sudo as this admin.
    sudo_password: Secret | None
    two_factor: bool


def _admin(host: Host, entry: AdminEntry, problems: list[Problem]) -> Admin | None:
    hash_name = f"admin-{entry.name}.password-hash"
    unsafe_before = len(problems)
    password_hash = stored(host, hash_name, "admin_users", entry.name, problems)
    sudo_password = stored(host, secret_store.admin_password_name(entry.name), "admin_users", entry.name, problems)
    if len(problems) > unsafe_before:
        return None
    if password_hash is None:
        problems.append(
            Problem(
                host.name,
                "admin_users",
                entry.name,
                "has no password hash, so could not sudo",
                f"put a hash from `openssl passwd -6` in {secret_store.where(hash_name)}",
            )
        )
        return None
    found = password_hashes.hash_problem(password_hash.reveal())
    if found is None and sudo_password is not None:
        matches = password_hashes.password_matches(sudo_password.reveal(), password_hash.reveal())
        found = "does not match the password in the store, so the admin could not sudo" if matches is False else None
    if found:
        problems.append(
            Problem(
                host.name,
                "admin_users",
                entry.name,
                f"has a password hash in {password_hash.source} that {found}",
                f"store the full output of `openssl passwd -6` (or `mkpasswd -m yescrypt`) for the password in "
                f"{secret_store.where(secret_store.admin_password_name(entry.name))}",
            )
        )
        return None
    return Admin(entry.name, tuple(entry.ssh_keys), password_hash, sudo_password, entry.two_factor)


def resolve_admins(host: Host, settings: AccountSettings) -> tuple[tuple[Admin, ...], list[Problem]]:
    """The admins with their secrets from the store, and what is missing there."""
    problems: list[Problem] = []
    admins = [_admin(host, entry, problems) for entry in settings.admin_users]
    return tuple(admin for admin in admins if admin), problems


def admins_of(host: Host) -> tuple[Admin, ...]:
    """``host``'s admins, validated, with their secrets."""
    return resolve_admins(host, settings_for(host, AccountSettings))[0]


def sudo_password_problems(host: Host, require_password: bool) -> list[Problem]:
    """A run that connects as an admin whose sudo asks a password needs that password stored."""
    user = compat.connect_user(host)
    names = [entry.get("name") for entry in host.data.get("admin_users") or [] if isinstance(entry, dict)]
    password_name = secret_store.admin_password_name(user)
    if user in names and require_password and secret_store.lookup(password_name) is None:
        return [
            Problem(
                host.name,
                "ssh_user",
                user,
                "connects as an admin whose sudo needs a password, but the store has none",
                f"put {user}'s password in {secret_store.where(password_name)}",
            )
        ]
    return []


class ShadowPassword(FactBase[str | None]):
    """How ``user``'s password field stands, never the hash itself (so no output can show it):
    ``locked`` (``*`` or ``!``), else the SHA-256 of the field; None when there is no such user."""

    def command(self, user: str) -> str:
        return (
            f"getent shadow {shlex.quote(user)} | cut -d: -f2 | {{ IFS= read -r field || exit 0; "
            """case "$field" in '*'*|'!'*) echo locked ;; *) printf %s "$field" | sha256sum ;; esac; }"""
        )

    def process(self, output: list[str]) -> str | None:
        return output[0].split()[0] if output and output[0].strip() else None


def _account_reads(
    user: str, home: str | None = None, ensure_home: bool = True, public_keys: list[str] | None = None, **_: Any
) -> compat.FactReads:
    """The facts ``server.user`` reads for these arguments, as it asks for them."""
    reads: compat.FactReads = [(Users, {}), (Groups, {}), (Os, {})]
    if home and ensure_home:
        reads.append((Directory, {"path": home}))
    if home and public_keys:
        keys = f"{home}/.ssh/authorized_keys"
        reads += [
            (Directory, {"path": f"{home}/.ssh"}),
            (AuthorizedKeys, {"user": user, "path": keys}),
            (File, {"path": keys}),
        ]
    return reads


@compat.announces_reads(_account_reads, secret=True)  # Users holds every password hash
@operation()
def user_account(**arguments: Any) -> Any:
    """
    pyinfra's ``server.user`` (same arguments), with the output of its Users fact, which holds
    every account's password hash, kept out of ``-vvv``.
    """
    with compat.fact_output_unprinted():
        yield from server.user._inner(**arguments)


@compat.announces_reads(lambda user, **_: [(ShadowPassword, {"user": user})])
@operation()
def password_hash(user: str, hashed: Secret) -> Any:
    """
    Set ``user``'s shadow password to ``hashed``; the hash never shows in pyinfra's output.

    + user: the account
    + hashed: a crypt(3) hash, from the secret store
    """
    if host.get_fact(ShadowPassword, user=user) == sha256_of(hashed.reveal()):
        host.noop(f"{user}'s password hash is already set")
        return
    yield StringCommand("usermod", "-p", QuoteString(HiddenValue(hashed.reveal())), QuoteString(user))


class PasswordMaxDays(FactBase["str | None"]):
    """The maximum password age in ``user``'s shadow entry (empty: none; not secret); None when
    there is no such user yet."""

    def command(self, user: str) -> str:
        return f"getent shadow {shlex.quote(user)} | cut -d: -f5"

    def process(self, output: list[str]) -> str | None:
        return output[0].strip() if output else None


@compat.announces_reads(lambda user, **_: [(PasswordMaxDays, {"user": user})])
@operation()
def password_max_age(user: str, days: int | None) -> Any:
    """
    ``user``'s maximum password age: ``days``, or none. An admin's password never expires: it
    is rotated through the secret store, and an expired one would make sshd demand a new
    password at login and stop every run (login.defs' ``PASS_MAX_DAYS`` still applies to
    accounts created by hand).

    + user: the account (created earlier in the run if it is new: login.defs gives it an age limit)
    + days: the limit, or None for none
    """
    current = host.get_fact(PasswordMaxDays, user=user)
    if days is None and current in ("", "-1", "99999") or days is not None and current == str(days):
        host.noop(f"{user}'s password {'never expires' if days is None else f'expires after {days} days'}")
        return
    yield StringCommand("chage", "-M", "-1" if days is None else str(days), QuoteString(user))


@compat.announces_reads(lambda user, **_: [(ShadowPassword, {"user": user})])
@operation()
def locked_password(user: str) -> Any:
    """
    No password can log in as ``user``: a shadow field of ``*`` matches no password.

    + user: the account
    """
    if host.get_fact(ShadowPassword, user=user) == "locked":
        host.noop(f"{user}'s password is already locked")
        return
    yield StringCommand("usermod", "-p", QuoteString("*"), QuoteString(user))


def locked_system_account(user: str, home: str, what: str) -> None:
    """A system account nobody logs in as: no login shell, no password, no home of its own made."""
    user_account(
        name=f"{what} {user}: system account, no login shell",
        user=user,
        system=True,
        shell=NO_LOGIN_SHELL,
        home=home,
        ensure_home=False,
        create_home=False,
    )
    locked_password(name=f"{what} {user}: no password", user=user)


@deploy("Admin users")
def admin_users() -> None:
    """
    Each admin in ``admin_users``: an account in ``admin_group`` (other groups kept), bash,
    exactly the SSH keys in data, and the password hash from the secret store.

    Example:

    .. code:: python

        from pyinfra_hardening import accounts
        accounts.admin_users()
    """
    settings = settings_for(host, AccountSettings)
    server.group(name=f"Admin group {settings.admin_group}", group=settings.admin_group)
    for admin in admins_of(host):
        user_account(
            name=f"Admin {admin.name}: account in {settings.admin_group}, bash, SSH keys",
            user=admin.name,
            groups=[settings.admin_group],
            append=True,  # keep any groups the admin already has
            shell="/bin/bash",
            home=f"/home/{admin.name}",
            create_home=True,
            public_keys=list(admin.ssh_keys),
            delete_keys=True,  # a key removed from data is revoked on the next run
        )
        password_hash(
            name=f"Admin {admin.name}: password hash from the secret store", user=admin.name, hashed=admin.password_hash
        )
        password_max_age(name=f"Admin {admin.name}: password never expires", user=admin.name, days=None)


def facts_read_first() -> compat.FactReads:
    """What ``root_lock_pending`` reads while a role loads."""
    return [(ShadowPassword, {"user": "root"})]


def root_lock_pending(host: Host) -> bool:
    """Whether ``lock_root`` will lock root's password in this run."""
    locking = settings_for(host, AccountSettings).lock_root_password
    return locking and host.get_fact(ShadowPassword, user="root") != "locked"


@deploy("Root account")
def lock_root() -> None:
    """
    Lock root's password (``lock_root_password``): admins use sudo. Apply after ``admin_users``
    and after ``ssh.harden(locks_pending=...)`` has proven an admin can log in and sudo.
    """
    if settings_for(host, AccountSettings).lock_root_password:
        locked_password(name="Lock root's password (admins use sudo)", user="root")
