"""SSH: keys only, TOTP as a second factor, ssh-audit's hardened crypto (guide 3.7, 3.8, 3.10),
applied so that it cannot lock the operator out.

Order of a run that changes sshd:
1. the managed drop-in lands with everything except the lock: password and root login stay as
   they were, and only the probe admin already needs key (+ TOTP); sshd reloads;
2. from the operator's machine, a fresh SSH login as that admin must succeed (the probe);
3. only then the final drop-in turns password and root login off, and sshd reloads again.
Each candidate passes ``sshd -t`` and an ``sshd -T`` check of the effective values first.
"""

from __future__ import annotations

import logging
import shlex
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko
from pydantic import Field
from pyinfra import host
from pyinfra.api import FactBase, OperationError, StringCommand, deploy, operation
from pyinfra.facts.files import File, FileContents
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import python
from pyinfra.operations.util import any_changed

from . import access_rules, compat, fleet, secret_store, totp
from .accounts import AccountSettings, Admin, admins_of
from .data_types import FilePath, Flag, HostSettings, LoginName, LoginNames
from .managed_files import render, sha256_of, text_of, upload_secret, validated_file
from .packages import ensure_packages
from .secret_store import Secret
from .settings import Problem, settings_for, stored, validated
from .ssh_login import answers_for
from .sudo import SudoSettings

if TYPE_CHECKING:
    from pyinfra.api.host import Host

MAIN_CONFIG = "/etc/ssh/sshd_config"
DROP_IN_DIR = "/etc/ssh/sshd_config.d"
MANAGED_DROP_IN = f"{DROP_IN_DIR}/00-hardening.conf"
INCLUDE_LINE = f"Include {DROP_IN_DIR}/*.conf"
PAM_SSHD = "/etc/pam.d/sshd"
RSA_HOST_KEY = "/etc/ssh/ssh_host_rsa_key"
ED25519_HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
MIN_RSA_BITS = 4096
MIN_MODULUS_BITS = 3072
NEUTRALISED = "# neutralised by pyinfra-hardening (set in 00-hardening.conf): "


# paramiko 4 (pyinfra 3.10 requires paramiko < 5) speaks no post-quantum key exchange. Where a
# policy allows only those, this one follows them, last, so pyinfra can still connect; OpenSSH
# clients keep choosing the post-quantum ones first. Not added where paramiko speaks the policy's.
PARAMIKO_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")


@dataclass(frozen=True)
class CryptoProfile:
    policy: str
    kex: tuple[str, ...]
    macs: tuple[str, ...]
    # Key exchanges added to the policy's own, so that pyinfra can connect at all.
    added_kex: tuple[str, ...] = ()
    ciphers: tuple[str, ...] = (
        "chacha20-poly1305@openssh.com",
        "aes256-gcm@openssh.com",
        "aes256-ctr",
        "aes192-ctr",
        "aes128-gcm@openssh.com",
        "aes128-ctr",
    )
    host_key_algorithms: tuple[str, ...] = ("ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256")


_ETM_256_FIRST = ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com")
_ETM_512_FIRST = ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com")
# (distribution, major version) -> the algorithms of ssh-audit's hardening guide for that release.
CRYPTO_PROFILES = {
    ("Debian", 12): CryptoProfile(
        "Hardened Debian 12 (version 3)",
        kex=(
            "sntrup761x25519-sha512",
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512",
            "diffie-hellman-group-exchange-sha256",
        ),
        macs=_ETM_256_FIRST,
    ),
    ("Debian", 13): CryptoProfile(
        "Hardened Debian 13 (version 1)",
        kex=("mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"),
        macs=_ETM_512_FIRST,
        added_kex=PARAMIKO_KEX,
    ),
    ("Ubuntu", 22): CryptoProfile(
        "Hardened Ubuntu Server 22.04 LTS (version 6)",
        kex=(
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512",
            "diffie-hellman-group-exchange-sha256",
        ),
        macs=_ETM_256_FIRST,
    ),
    ("Ubuntu", 24): CryptoProfile(
        "Hardened Ubuntu Server 24.04 LTS (version 2)",
        kex=(
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "diffie-hellman-group18-sha512",
            "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group16-sha512",
        ),
        macs=_ETM_512_FIRST,
    ),
}


class SshSettings(HostSettings):
    title = "SSH"

    ssh_two_factor: Flag = Field(
        True, description="SSH needs the key and a TOTP code from the admin's phone (guide 3.10)"
    )
    ssh_two_factor_strict: Flag = Field(
        False, description="refuse admins not enrolled yet (otherwise they log in with key + password)"
    )
    ssh_strong_crypto: Flag = Field(
        True, description="only the ciphers, key exchanges, MACs and host keys of ssh-audit's hardened policy"
    )
    ssh_allow_users: LoginNames = Field(
        [], description="if set, only these users may log in over SSH (every admin must be listed)"
    )
    ssh_allow_groups: LoginNames = Field(
        [], description="if set, only members of these groups may log in over SSH (admin_group must be listed)"
    )
    ssh_probe_user: LoginName | None = Field(
        None, description="admin whose fresh login proves access before password and root login are turned off"
    )
    ssh_probe_key: FilePath | None = Field(
        None, description="that admin's private key on the operator's machine (default: the key pyinfra connects with)"
    )

    def problems(self, host: Host) -> list[Problem]:
        accounts, _ = validated(host, AccountSettings, in_use=False)  # its values; its own rules report the rest
        if accounts is None:
            return []  # its own problems are reported by AccountSettings
        problems = access_rules.ssh_lockout(host, self, accounts)
        sudo_settings, _ = validated(host, SudoSettings, in_use=False)
        probe_user = self.ssh_probe_user or (accounts.admin_users[0].name if accounts.admin_users else None)
        locking = accounts.lock_root_password or (sudo_settings is not None and sudo_settings.sudo_require_password)
        if locking and probe_user is not None:
            password_name = secret_store.admin_password_name(probe_user)
            if stored(host, password_name, "admin_users", probe_user, problems) is None:
                problems.append(
                    Problem(
                        host.name,
                        "admin_users",
                        probe_user,
                        "has no password in the store, so the run could not prove this admin can sudo "
                        "before it locks root's password and passwordless sudo",
                        f"put {probe_user}'s password in {secret_store.where(password_name)} "
                        "(or set lock_root_password and sudo_require_password to False)",
                    )
                )
        enrolled = [entry.name for entry in accounts.admin_users if entry.two_factor and self.ssh_two_factor]
        for name in enrolled:
            secret = stored(host, totp.secret_name(name), "admin_users", name, problems)
            found = totp.problem_with(secret, stored(host, totp.scratch_name(name), "admin_users", name, problems))
            if found:
                problems.append(
                    Problem(
                        host.name,
                        "admin_users",
                        name,
                        f"has a bad secret: {found}",
                        "delete both TOTP files of this admin from the store to generate new ones",
                    )
                )
        return problems

    def probe_user(self, admins: Sequence[Admin]) -> str:
        return self.ssh_probe_user or admins[0].name

    def probe_key(self, host: Host) -> str | None:
        return str(Path(self.ssh_probe_key).expanduser()) if self.ssh_probe_key else fleet.connect_key(host)

    def not_enrolled(self, admins: Sequence[Admin]) -> list[str]:
        """Admins who log in with key + password until they enroll (none when 2FA is off)."""
        return [admin.name for admin in admins if not admin.two_factor] if self.ssh_two_factor else []


@dataclass(frozen=True)
class MatchBlock:
    """An extra ``Match User`` block for the managed drop-in (an account with rules of its own,
    such as the backup drop box's); the user is added to the allow lists when they are set."""

    user: str
    comment: str
    directives: tuple[str, ...]


# --- facts ---------------------------------------------------------------------------------------


class RsaHostKeyBits(FactBase[int | None]):
    """Size of the RSA host key, or None when there is none."""

    def command(self) -> str:
        return f"ssh-keygen -lf {RSA_HOST_KEY}.pub 2>/dev/null | cut -d' ' -f1 || true"

    def process(self, output: list[str]) -> int | None:
        return int(output[0]) if output and output[0].strip().isdigit() else None


class WeakModuli(FactBase[int]):
    """How many Diffie-Hellman group-exchange moduli are smaller than the policy allows."""

    def command(self) -> str:
        return f"awk '!/^#/ && $5 < {MIN_MODULUS_BITS - 1}' /etc/ssh/moduli 2>/dev/null | wc -l"

    def process(self, output: list[str]) -> int:
        return int(output[0])


class SshdDropIns(FactBase[list[str]]):
    """The drop-in files sshd reads, in its order."""

    def command(self) -> str:
        return f"ls -1 {DROP_IN_DIR}/*.conf 2>/dev/null || true"

    default = list

    def process(self, output: list[str]) -> list[str]:
        return sorted(line.strip() for line in output if line.strip())


class SshdUnit(FactBase[str]):
    """The systemd unit of the SSH daemon: ssh.service on Debian and Ubuntu, sshd elsewhere."""

    def command(self) -> str:
        return "systemctl list-unit-files ssh.service >/dev/null 2>&1 && echo ssh.service || echo sshd.service"

    def process(self, output: list[str]) -> str:
        return output[0].strip()


class FirstLineSha256(FactBase[str | None]):
    """SHA-256 of a file's first line (a secret's fingerprint, so the secret never travels back)."""

    def command(self, path: str) -> str:
        return f"test -f {shlex.quote(path)} && head -n1 {shlex.quote(path)} | tr -d '\\n' | sha256sum || true"

    def process(self, output: list[str]) -> str | None:
        return output[0].split()[0] if output and output[0].strip() else None


# --- validation of a candidate in sshd's real context -------------------------------------------


def sshd_validator(dest: str, probe_user: str, expect: list[str]) -> str:
    """A shell check for a candidate of ``dest``: the whole configuration, with the candidate in
    place of ``dest``, must pass ``sshd -t`` and show ``expect`` in ``sshd -T`` for the admin."""
    relative = dest.removeprefix("/etc/ssh/")
    checks = " && ".join(
        f'(grep -qix {shlex.quote(line)} "$dir/effective" || '
        f"(echo 'sshd would not apply: {line} (a file read earlier sets it)' >&2; false))"
        for line in expect
    )
    return (
        '(dir=$(mktemp -d) && cp -a /etc/ssh/. "$dir/" && cp {} "$dir/' + relative + '" && '
        'sed -i "s#/etc/ssh/#$dir/#g" "$dir/sshd_config" && '
        'sshd -t -f "$dir/sshd_config" && '
        f'sshd -T -f "$dir/sshd_config" -C user={probe_user},host=localhost,addr=127.0.0.1 '
        '> "$dir/effective" && ' + (checks or "true") + '; status=$?; rm -rf "$dir"; exit $status)'
    )


def expected_effective(settings: SshSettings, final: bool) -> list[str]:
    """What ``sshd -T`` must print for the probe admin once the candidate is in place."""
    lines = [f"authenticationmethods {authentication_methods(settings)}", "pubkeyauthentication yes"]
    if final:
        lines += ["permitrootlogin no", "passwordauthentication no"]
    if settings.ssh_two_factor:
        lines.append("kbdinteractiveauthentication yes")
    return lines


def authentication_methods(settings: SshSettings) -> str:
    return "publickey,keyboard-interactive" if settings.ssh_two_factor else "publickey"


# --- operations ----------------------------------------------------------------------------------


@compat.announces_reads(lambda **_: [(RsaHostKeyBits, {})])
@operation()
def rsa_host_key(bits: int) -> Any:
    """
    An RSA host key of at least ``bits`` bits (clients see a new RSA fingerprint once).

    + bits: the smallest size kept
    """
    current = host.get_fact(RsaHostKeyBits)
    if current is not None and current >= bits:
        host.noop(f"RSA host key has {current} bits")
        return
    key = shlex.quote(RSA_HOST_KEY)
    yield StringCommand(f"rm -f {key} {key}.pub && ssh-keygen -q -t rsa -b {bits} -N '' -f {key}")


@compat.announces_reads(lambda **_: [(File, {"path": ED25519_HOST_KEY})])
@operation()
def ed25519_host_key() -> Any:
    """An ed25519 host key, made if there is none."""
    if host.get_fact(File, path=ED25519_HOST_KEY):
        host.noop("ed25519 host key exists")
        return
    yield StringCommand(f"ssh-keygen -q -t ed25519 -N '' -f {ED25519_HOST_KEY}")


@compat.announces_reads(lambda **_: [(WeakModuli, {})])
@operation()
def strong_moduli() -> Any:
    """Drop group-exchange moduli under the policy's minimum size from /etc/ssh/moduli."""
    if not host.get_fact(WeakModuli):
        host.noop("no weak moduli")
        return
    yield StringCommand(
        f"awk '/^#/ || $5 >= {MIN_MODULUS_BITS - 1}' /etc/ssh/moduli > /etc/ssh/moduli.hardening "
        "&& mv -f /etc/ssh/moduli.hardening /etc/ssh/moduli"
    )


def totp_secret_path(user: str) -> str:
    return f"/home/{user}/.google_authenticator"


@compat.announces_reads(lambda user, **_: [(FirstLineSha256, {"path": totp_secret_path(user)})])
@operation()
def totp_secret_file(user: str) -> Any:
    """
    The admin's ~/.google_authenticator, written only when its secret differs.

    The PAM module rewrites the file at each login (used codes, rate limits, spent scratch
    codes), so only the secret on its first line is compared: a re-run never rotates it. A
    secret the store lacks is generated there when the operation runs (never on ``--dry``).

    + user: the admin
    """
    path = totp_secret_path(user)
    secret, scratch_codes = totp.enroll(user, compat.executing())
    wanted = sha256_of(secret.reveal())
    if host.get_fact(FirstLineSha256, path=path) == wanted:
        host.noop(f"{user} is enrolled with the stored TOTP secret")
        return
    host.log(f"Will write {path} (TOTP secret, not shown)")
    yield from upload_secret(path, totp.google_authenticator_file(secret, scratch_codes), user, user, "400")


def pam_sshd_lines(current: list[str], totp_line: str | None) -> str:
    """/etc/pam.d/sshd with the TOTP module first (or nowhere when ``totp_line`` is None)."""
    kept = [line for line in current if "pam_google_authenticator.so" not in line]
    return text_of(([totp_line] if totp_line else []) + kept)


def totp_pam_line(strict: bool) -> str:
    # nullok: an admin with no ~/.google_authenticator yet is asked for the account password
    # instead (ignore=ignore falls through to common-auth); strict refuses them.
    if strict:
        return "auth [success=done new_authtok_reqd=done default=die] pam_google_authenticator.so"
    return "auth [success=done new_authtok_reqd=done ignore=ignore default=die] pam_google_authenticator.so nullok"


def neutralise(lines: list[str], keywords: set[str]) -> str:
    """Comment out the settings of ``keywords`` in another drop-in; ours would win anyway."""
    result = []
    for line in lines:
        words = line.split()
        if words and not line.lstrip().startswith("#") and words[0].lower() in keywords:
            result.append(NEUTRALISED + line)
        else:
            result.append(line)
    return text_of(result)


def keywords_of(config: str) -> set[str]:
    """Global keywords a config text sets (before its first Match block)."""
    found = set()
    for line in config.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0].lower() == "match":
            break
        found.add(words[0].lower())
    return found


@operation(is_idempotent=False)
def reload_sshd(unit: str) -> Any:
    """
    Reload a running sshd (existing sessions stay). A socket-activated one that is not
    running yet reads the new configuration when it starts. Call it with ``_if``.

    + unit: sshd's systemd unit
    """
    yield StringCommand(f"if systemctl is-active --quiet {unit}; then systemctl reload {unit}; fi")


# --- the probe: a fresh login from the operator's machine ---------------------------------------


class ProbeFailed(OperationError):
    pass


PROBE_LOG = "hardening.ssh.probe"
logging.getLogger(PROBE_LOG).setLevel(logging.CRITICAL)
logging.getLogger(PROBE_LOG).propagate = False


@dataclass(frozen=True)
class AdminLogin:
    """A fresh login as an admin from the operator's machine, as the operator would log in."""

    user: str
    key: str | None  # the private key file; None: the keys in the operator's ssh-agent
    address: str
    port: int

    @property
    def where(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"


def logged_in(login: AdminLogin) -> paramiko.Transport:
    """An SSH connection authenticated as ``login.user``: the key, then a TOTP code (or the
    password of an admin not enrolled yet) from the secret store, as pyinfra answers. Raises
    ProbeFailed when refused, paramiko's and the OS's errors when the connection fails."""
    transport = open_transport(login.address, login.port)
    try:
        remaining = _offer_keys(transport, login.user, login.key, login.where)
        if not transport.is_authenticated() and "keyboard-interactive" in remaining:
            transport.auth_interactive(login.user, answers_for(transport, login.user))
        if not transport.is_authenticated():
            raise ProbeFailed(f"{login.where} was not authenticated")
    except BaseException:
        transport.close()
        raise
    return transport


def probe_login(probe: AdminLogin, sudo_password: Secret | None = None) -> None:
    """Log in as the probe admin and, given the admin's stored password, sudo with it (a fresh
    sudo: ``-k`` drops any cached credential); raise with the reason if either is refused."""
    transport = None
    try:
        transport = logged_in(probe)
        channel = transport.open_session(timeout=20)
        if sudo_password is None:
            channel.exec_command("true")
        else:
            channel.exec_command("sudo -S -k -p '' true")  # the password goes to stdin, never a command line
            channel.sendall((sudo_password.reveal() + "\n").encode())
            channel.shutdown_write()
        if channel.recv_exit_status() != 0:
            refused = "sudo refused the password in the store" if sudo_password else "could not run a command"
            raise ProbeFailed(f"{probe.where} logged in but {refused}")
    except ProbeFailed as error:
        raise ProbeFailed(_probe_message(probe, str(error))) from None
    except (paramiko.SSHException, OSError, ValueError) as error:
        raise ProbeFailed(_probe_message(probe, f"{probe.where}: {type(error).__name__}: {error}")) from None
    finally:
        if transport is not None:
            transport.close()


def _offer_keys(transport: paramiko.Transport, user: str, key_path: str | None, where: str) -> list[str]:
    """Authenticate with the key file, or else with the keys in the operator's ssh-agent."""
    keys = [paramiko.PKey.from_path(key_path)] if key_path else list(paramiko.Agent().get_keys())
    if not keys:
        raise ProbeFailed(f"no private key to log in as {where}: set ssh_probe_key or load ssh-agent")
    for key in keys:
        try:
            return transport.auth_publickey(user, key)
        except paramiko.AuthenticationException:
            continue
    raise ProbeFailed(f"{where} refused every key offered ({key_path or 'ssh-agent'})")


def open_transport(address: str, port: int, attempts: int = 20, connect_timeout: float = 20) -> paramiko.Transport:
    """A new SSH connection up to the key exchange, retried: sshd resets connections while it
    reloads, and OpenSSH 10 turns a source away for a while after connections that never
    authenticated. A firewall that drops the connection costs ``connect_timeout`` per attempt."""
    for attempt in range(attempts):
        transport = None
        try:
            transport = paramiko.Transport(socket.create_connection((address, port), timeout=connect_timeout))
            transport.set_log_channel(PROBE_LOG)  # a reset while sshd reloads is expected, not news
            transport.start_client(timeout=connect_timeout)
            # start_client returns quietly when it times out; this raises unless the key exchange is done.
            transport.get_remote_server_key()
            return transport
        except (paramiko.SSHException, OSError):
            if transport is not None:
                transport.close()
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _probe_message(probe: AdminLogin, reason: str) -> str:
    return (
        f"a fresh SSH login as admin {probe.user} failed ({reason}). Password and root "
        f"login, root's password and passwordless sudo were left as they were. Check the admin's key "
        f"(ssh_probe_key), TOTP secret and password in the store, then re-run."
    )


# --- the deploy ----------------------------------------------------------------------------------


def crypto_profile(settings: SshSettings) -> CryptoProfile | None:
    if not settings.ssh_strong_crypto:
        return None
    distribution = host.get_fact(LinuxDistribution)
    key = (distribution.get("name"), distribution.get("major"))
    if key not in CRYPTO_PROFILES:
        supported = ", ".join(f"{name} {major}" for name, major in CRYPTO_PROFILES)
        raise OperationError(
            f"{host.name}: no hardened SSH crypto profile for {key[0]} {key[1]} (have: {supported}); "
            "set ssh_strong_crypto = False for this host"
        )
    return for_this_client(CRYPTO_PROFILES[key])


def for_this_client(profile: CryptoProfile) -> CryptoProfile:
    """``profile`` as served to this machine's paramiko: its added key exchanges go when
    paramiko speaks one of the policy's own (paramiko 5.1 has mlkem768x25519-sha256)."""
    if profile.added_kex and set(profile.kex) & compat.paramiko_key_exchanges():
        return replace(profile, added_kex=())
    return profile


def render_drop_in(
    settings: SshSettings,
    crypto: CryptoProfile | None,
    probe_user: str,
    final: bool,
    match_blocks: Sequence[MatchBlock] = (),
    *,
    admin_group: str,
    banner: str | None = None,
) -> str:
    """The managed drop-in: stage 1 (``final=False``) or the final one; members of
    ``admin_group`` may forward to inner hosts (ProxyJump); ``banner``, a file shown before
    authentication."""
    extra_users = [block.user for block in match_blocks]
    return render(
        MANAGED_DROP_IN,
        final=final,
        two_factor=settings.ssh_two_factor,
        methods=authentication_methods(settings),
        allow_users=[*settings.ssh_allow_users, *extra_users] if settings.ssh_allow_users else [],
        allow_groups=[*settings.ssh_allow_groups, *extra_users] if settings.ssh_allow_groups else [],
        crypto=crypto,
        probe_user=probe_user,
        match_blocks=match_blocks,
        admin_group=admin_group,
        banner=banner,
    )


def main_config_with_include(lines: list[str]) -> str | None:
    """The main config with the drop-in Include as its first directive; None if it already is."""
    directives = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if directives and directives[0] == INCLUDE_LINE:
        return None
    kept = [line for line in lines if line.strip() != INCLUDE_LINE]
    return text_of([INCLUDE_LINE, *kept])


def facts_read_first() -> compat.FactReads:
    """What ``harden`` reads while it loads."""
    return [
        (SshdUnit, {}),
        (SshdDropIns, {}),
        (LinuxDistribution, {}),
        *((FileContents, {"path": path}) for path in (PAM_SSHD, MAIN_CONFIG, MANAGED_DROP_IN)),
    ]


@deploy("SSH")
def harden(match_blocks: Sequence[MatchBlock] = (), locks_pending: bool = False, banner: str | None = None) -> None:
    """
    Harden sshd: keys only, TOTP as a second factor, ssh-audit's hardened crypto, no root or
    password login, proven by a fresh admin login (and sudo with the stored password) before
    the last step (see the module's docstring). Apply after ``accounts.admin_users`` (the probe
    logs in as an admin), before locking root or sudo.

    + match_blocks: extra ``Match User`` blocks for accounts with rules of their own
    + locks_pending: root's password or passwordless sudo is locked after this: prove access
      even where sshd is unchanged
    + banner: a file sshd shows before authentication (the roles pass ``/etc/issue.net``, which
      ``os_hardening`` writes from ``login_banner``)

    Example:

    .. code:: python

        from pyinfra_hardening import accounts, ssh
        accounts.admin_users()
        ssh.harden()
    """
    settings = settings_for(host, SshSettings)
    admins = admins_of(host)
    compat.read_facts_at_once(facts_read_first())
    crypto = crypto_profile(settings)
    unit = host.get_fact(SshdUnit)
    probe_user = settings.probe_user(admins)
    changed = []  # operations after which sshd must reload
    not_enrolled = settings.not_enrolled(admins)

    if settings.ssh_two_factor:
        ensure_packages("Install the TOTP PAM module", ["libpam-google-authenticator"])
        for admin in admins:
            if admin.two_factor:
                totp_secret_file(name=f"TOTP enrollment of {admin.name}", user=admin.name)
        if not_enrolled and not settings.ssh_two_factor_strict:
            host.log(f"Not enrolled in TOTP yet (key + password until they are): {', '.join(not_enrolled)}")
    strict = settings.ssh_two_factor_strict or not not_enrolled
    pam_text = pam_sshd_lines(
        host.get_fact(FileContents, path=PAM_SSHD) or [], totp_pam_line(strict) if settings.ssh_two_factor else None
    )
    validated_file(
        name="PAM for sshd: TOTP module first" if settings.ssh_two_factor else "PAM for sshd: no TOTP",
        dest=PAM_SSHD,
        content=pam_text,
        validator=None,
    )

    if crypto:
        changed.append(rsa_host_key(name=f"RSA host key of {MIN_RSA_BITS} bits", bits=MIN_RSA_BITS))
        changed.append(ed25519_host_key(name="ed25519 host key"))
        changed.append(strong_moduli(name=f"Group-exchange moduli of {MIN_MODULUS_BITS} bits or more"))

    main_text = main_config_with_include(host.get_fact(FileContents, path=MAIN_CONFIG) or [])
    if main_text is not None:
        changed.append(
            validated_file(
                name=f"{MAIN_CONFIG} reads {DROP_IN_DIR} first",
                dest=MAIN_CONFIG,
                content=main_text,
                validator=sshd_validator(MAIN_CONFIG, probe_user, []),
            )
        )

    admin_group = settings_for(host, AccountSettings).admin_group
    final = render_drop_in(settings, crypto, probe_user, True, match_blocks, admin_group=admin_group, banner=banner)
    current = host.get_fact(FileContents, path=MANAGED_DROP_IN)
    sshd_changes = current is None or text_of(current) != final
    if sshd_changes:
        staged = validated_file(
            name="sshd drop-in, stage 1: hardened, password and root login as they were",
            dest=MANAGED_DROP_IN,
            content=render_drop_in(
                settings, crypto, probe_user, False, match_blocks, admin_group=admin_group, banner=banner
            ),
            validator=sshd_validator(MANAGED_DROP_IN, probe_user, expected_effective(settings, False)),
        )
        reload_sshd(name=f"Reload {unit} (stage 1)", unit=unit, _if=any_changed(*changed, staged))
    if sshd_changes or locks_pending:
        address, port = fleet.ssh_address(host)
        sudo_password = next(admin.sudo_password for admin in admins if admin.name == probe_user)
        python.call(
            name=f"Prove a fresh SSH login as {probe_user} works"
            + (", and sudo with the stored password" if sudo_password else ""),
            function=probe_login,
            probe=AdminLogin(probe_user, settings.probe_key(host), address, port),
            sudo_password=sudo_password,
        )
    if sshd_changes:
        changed = [
            validated_file(
                name="sshd drop-in, stage 2: no password or root login",
                dest=MANAGED_DROP_IN,
                content=final,
                validator=sshd_validator(MANAGED_DROP_IN, probe_user, expected_effective(settings, True)),
            )
        ]

    # After the proof: another drop-in (cloud-init's) may be what allows password login today.
    managed = keywords_of(final)
    drop_ins = host.get_fact(SshdDropIns)
    compat.read_facts_at_once([(FileContents, {"path": path}) for path in drop_ins])
    for path in drop_ins:
        lines = host.get_fact(FileContents, path=path) or []
        if path != MANAGED_DROP_IN and keywords_of("\n".join(lines)) & managed:
            changed.append(
                validated_file(
                    name=f"Neutralise settings in {path} that 00-hardening.conf owns",
                    dest=path,
                    content=neutralise(lines, managed),
                    validator=sshd_validator(path, probe_user, []),
                )
            )
    reload_sshd(name=f"Reload {unit}", unit=unit, _if=any_changed(*changed))
