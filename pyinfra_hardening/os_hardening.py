"""The operating system beyond the guide: kernel parameters, login.defs, core dumps, unused
kernel modules, legal banners, idle shells, accounting, package hygiene and security updates.

What Lynis and OpenSCAP (ANSSI BP-028) weigh and the guide leaves out. Every part is data: a
key with its default and its reason. A container cannot set the kernel's own parameters (its
``/proc/sys`` is the host's, read-only): the deploy writes them for the next boot, says which
ones the host owns, and reports no change for them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from posixpath import dirname
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator
from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import FileContents, FindInFile
from pyinfra.facts.server import LinuxDistribution, LinuxDistributionDict
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from . import accounts, compat, services
from .data_types import ClockTime, Flag, HostSettings, described, refuse, whole_number
from .managed_files import directory, render, text_of, validated_file
from .packages import ensure_packages
from .passwords import PasswordSettings
from .settings import settings_for

SYSCTL_FILE = "/etc/sysctl.d/90-pyinfra-hardening.conf"
LOGIN_DEFS = "/etc/login.defs"
PROFILE = "/etc/profile"
CORE_LIMITS = "/etc/security/limits.d/90-pyinfra-hardening.conf"
COREDUMP_DROP_IN = "/etc/systemd/coredump.conf.d/90-pyinfra-hardening.conf"
MODPROBE_FILE = "/etc/modprobe.d/90-pyinfra-hardening.conf"
NETWORK_BANNER = "/etc/issue.net"  # sshd shows it before authentication (the roles set its Banner)
ISSUE_FILES = ("/etc/issue", NETWORK_BANNER)
AUTO_UPGRADES = "/etc/apt/apt.conf.d/20auto-upgrades"
UNATTENDED_UPGRADES = "/etc/apt/apt.conf.d/52pyinfra-hardening"
NEEDRESTART_DROP_IN = "/etc/needrestart/conf.d/90-pyinfra-hardening.conf"
SYSSTAT_DEFAULTS = "/etc/default/sysstat"
# The line files.line finds, as it asks pyinfra's FindInFile fact for it.
SYSSTAT_ENABLED_LINE = "^ENABLED=.*$"
SYSSTAT_ENABLED = {
    "path": SYSSTAT_DEFAULTS,
    "pattern": SYSSTAT_ENABLED_LINE,
    "interpolate_variables": False,
    "extended_regex": False,
}
ACCT_DROP_IN = "/etc/systemd/system/acct.service.d/pyinfra-hardening.conf"
SECURITY_SOURCES = "/etc/apt/sources.list.d/pyinfra-hardening-security.list"
# What Lynis counts as compilers (the assembler comes with binutils, which needrestart needs).
COMPILERS = ["/usr/bin/as", "/usr/bin/cc", "/usr/bin/gcc", "/usr/bin/clang"]
BLOCK_START = "# BEGIN pyinfra-hardening (managed; edits inside are replaced on the next run)"
BLOCK_END = "# END pyinfra-hardening"

# Tools an auditor expects on a server: accounting, package checks, pending restarts, the CA
# bundle every certificate check (the alert relay's STARTTLS, ACME, apt over https) needs, and
# AppArmor's tools, which load the profiles packages ship (Debian's and Ubuntu's kernels enable
# AppArmor; a minimal image may lack the tools, leaving every profile unloaded).
BASELINE_PACKAGES = [
    "ca-certificates",
    "apparmor",
    "libpam-tmpdir",  # a private $TMPDIR per login session
    "acct",  # process accounting
    "sysstat",  # resource accounting
    "needrestart",  # which daemons still run replaced libraries after an upgrade
    "debsums",  # verify installed files against the packages' checksums
    "apt-show-versions",  # which packages have updates
    "apt-listchanges",  # what an upgrade changes, before it does
    "unattended-upgrades",
]

DEFAULT_KERNEL_PARAMETERS = {
    # Files and links: no following of others' symlinks or hardlinks in sticky folders, no
    # writing into others' FIFOs and files there, no core dumps of setuid programs.
    "fs.protected_fifos": 2,
    "fs.protected_hardlinks": 1,
    "fs.protected_regular": 2,
    "fs.protected_symlinks": 1,
    "fs.suid_dumpable": 0,
    # The kernel: addresses, logs, perf, BPF and ptrace kept from unprivileged users; ASLR on.
    "kernel.core_uses_pid": 1,
    "kernel.ctrl-alt-del": 0,
    "kernel.dmesg_restrict": 1,
    "kernel.kptr_restrict": 2,
    "kernel.perf_event_paranoid": 3,
    "kernel.randomize_va_space": 2,
    "kernel.sysrq": 0,
    "kernel.unprivileged_bpf_disabled": 1,
    "kernel.yama.ptrace_scope": 1,
    "net.core.bpf_jit_harden": 2,
    "dev.tty.ldisc_autoload": 0,
    # The network: no routing, redirects or source routes (a server is no router; a host that
    # runs containers or a VPN needs forwarding: set those keys back to 1), martians logged.
    "net.ipv4.conf.all.accept_redirects": 0,
    "net.ipv4.conf.all.accept_source_route": 0,
    "net.ipv4.conf.all.bootp_relay": 0,
    "net.ipv4.conf.all.forwarding": 0,
    "net.ipv4.conf.all.log_martians": 1,
    "net.ipv4.conf.all.mc_forwarding": 0,
    "net.ipv4.conf.all.proxy_arp": 0,
    "net.ipv4.conf.all.rp_filter": 1,
    "net.ipv4.conf.all.send_redirects": 0,
    "net.ipv4.conf.default.accept_redirects": 0,
    "net.ipv4.conf.default.accept_source_route": 0,
    "net.ipv4.conf.default.log_martians": 1,
    "net.ipv4.conf.default.rp_filter": 1,
    "net.ipv4.conf.default.send_redirects": 0,
    "net.ipv4.icmp_echo_ignore_broadcasts": 1,
    "net.ipv4.icmp_ignore_bogus_error_responses": 1,
    "net.ipv4.tcp_syncookies": 1,
    "net.ipv6.conf.all.accept_redirects": 0,
    "net.ipv6.conf.all.accept_source_route": 0,
    "net.ipv6.conf.default.accept_redirects": 0,
    "net.ipv6.conf.default.accept_source_route": 0,
}
# Filesystems, network protocols and buses a server never uses: each one unloaded is attack
# surface gone (dccp, sctp, rds and tipc have had remotely reachable bugs). squashfs (snaps)
# and udf (some clouds' provisioning disks) stay allowed.
DEFAULT_DISABLED_MODULES = [
    "cramfs",
    "freevxfs",
    "hfs",
    "hfsplus",
    "jffs2",
    "dccp",
    "sctp",
    "rds",
    "tipc",
    "usb-storage",
    "firewire-core",
    "firewire-ohci",
    "firewire-sbp2",
]
DEFAULT_BANNER = (
    "Authorised access only. This system is private property of its owner; unauthorised access "
    "is prohibited. Activity is monitored and logged, and the records may be used as evidence "
    "under criminal and civil law."
)

KernelParameter = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$", max_length=128),
    described("must be a sysctl key like 'kernel.sysrq' (a-z 0-9 _ - between dots)"),
]
KernelValue = Annotated[int, described("must be a whole number (an int, unquoted)")]
ModuleName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9_-]{1,64}$"), described("must be a kernel module name like 'usb-storage'")
]
# Printable ASCII without backslashes (getty expands \ escapes in /etc/issue).
BannerText = Annotated[
    str,
    StringConstraints(pattern=r"^[ -\[\]-~]{20,2000}$"),
    described("must be 20 to 2000 printable ASCII characters, on one line, without backslashes"),
]


class OsHardeningSettings(HostSettings):
    title = "Operating system"

    kernel_parameters: Annotated[
        dict[KernelParameter, KernelValue],
        described("must be a dict of sysctl keys like 'kernel.sysrq' to whole numbers"),
    ] = Field(
        DEFAULT_KERNEL_PARAMETERS,
        description="kernel parameters written to /etc/sysctl.d and set live (a container's kernel is the host's: "
        "the deploy names what it cannot set); replace the whole dict to change one",
    )
    login_umask: Annotated[
        str,
        # Each of group's and others' digits keeps the write bit (2, 3, 6 or 7).
        StringConstraints(pattern=r"^0?[0-7][2367][2367]$"),
        described("must be an octal umask like '027' that keeps group and others from writing"),
    ] = Field(
        "027", description="umask of new login sessions and home folders (login.defs): nothing new is world-readable"
    )
    password_max_days: Annotated[int, whole_number(1, 99999)] = Field(
        365,
        description="password age limit for accounts created from now on (login.defs); the admins this project "
        "manages never expire: their password is rotated through the store, and an expired one would stop a run",
    )
    password_min_days: Annotated[int, whole_number(0, 365)] = Field(
        1, description="days before a new password may be changed again (login.defs)"
    )
    password_warn_days: Annotated[int, whole_number(0, 365)] = Field(
        14, description="days of warning before a password expires (login.defs)"
    )
    shell_idle_timeout: Annotated[int, whole_number(0, 86400)] = Field(
        900, description="seconds an interactive shell may sit idle before it exits (0: never)"
    )
    disabled_kernel_modules: Annotated[list[ModuleName], described("must be a list of kernel module names")] = Field(
        DEFAULT_DISABLED_MODULES,
        description="kernel modules that may never load: unused filesystems, protocols, USB and FireWire storage",
    )
    login_banner: BannerText = Field(
        DEFAULT_BANNER, description="legal notice in /etc/issue and /etc/issue.net: who may use the host"
    )
    security_updates: Flag = Field(True, description="unattended-upgrades installs security updates every day")
    security_reboot_time: ClockTime | None = Field(
        None, description="if set, reboot at this time (HH:MM) when an update needs it; None: never reboot by itself"
    )
    private_home_folders: Flag = Field(
        True,
        description="home folders of accounts with a login shut to others (0750), their shell start files and "
        "/etc/skel's readable by owner and group only (0640)",
    )

    @model_validator(mode="after")
    def _reboot_needs_updates(self) -> OsHardeningSettings:
        if self.security_reboot_time and not self.security_updates:
            raise refuse(
                "security_reboot_time",
                "is set but security_updates is False, so no update would ever ask for the reboot",
                "set security_updates = True, or security_reboot_time = None",
            )
        return self


@dataclass(frozen=True)
class KernelParameterState:
    value: str | None  # None: the running kernel has no such parameter
    writable: bool


class KernelParameters(FactBase[dict[str, KernelParameterState]]):
    """The live value of each sysctl key, and whether this host may change it (not in a
    container, whose /proc/sys is the host's and read-only)."""

    def command(self, keys: tuple[str, ...]) -> str:
        paths = " ".join(shlex.quote(key) for key in keys)
        return (
            f'for key in {paths}; do path=/proc/sys/$(echo "$key" | tr . /); '
            'if [ -e "$path" ]; then [ -w "$path" ] && w=w || w=r; '
            'printf "%s %s %s\\n" "$key" "$w" "$(tr -s "\\t" " " < "$path")"; '
            'else printf "%s -\\n" "$key"; fi; done'
        )

    def process(self, output: list[str]) -> dict[str, KernelParameterState]:
        found = {}
        for line in output:
            key, access, *value = line.split(" ", 2)
            found[key] = KernelParameterState(value[0].strip() if value else None, access == "w")
        return found


def kernel_parameters_text(parameters: dict[str, int]) -> str:
    """The sysctl drop-in: ``-`` before each key so a parameter a kernel lacks does not fail the
    boot's systemd-sysctl (the deploy checks the live values itself)."""
    lines = [f"-{key} = {value}" for key, value in sorted(parameters.items())]
    return "# Managed by pyinfra-hardening; edits here are replaced on the next run.\n" + text_of(lines)


@compat.announces_reads(lambda parameters, **_: [(KernelParameters, {"keys": tuple(sorted(parameters))})])
@operation()
def live_kernel_parameters(parameters: dict[str, int]) -> Any:
    """
    Set each kernel parameter whose live value differs, and check it took. Parameters the host
    cannot change (a container's) or the kernel does not have are named and left alone.

    + parameters: sysctl key -> value
    """
    live = host.get_fact(KernelParameters, keys=tuple(sorted(parameters)))
    wrong = {key: value for key, value in parameters.items() if live[key].value not in (None, str(value))}
    missing = sorted(key for key in parameters if live[key].value is None)
    owned = sorted(key for key in wrong if not live[key].writable)
    if missing:
        host.log(f"This kernel has no {', '.join(missing)}: left out")
    if owned:
        host.log(
            f"Kernel parameters this host cannot set (a container: they are its host's): "
            f"{', '.join(f'{key} = {live[key].value} (want {wrong[key]})' for key in owned)}"
        )
    settable = {key: value for key, value in wrong.items() if live[key].writable}
    if not settable:
        host.noop("the kernel parameters it can set are as configured")
        return
    for key, value in sorted(settable.items()):
        setting = shlex.quote(f"{key}={value}")
        yield StringCommand(f'sysctl -q -w {setting} && [ "$(sysctl -n {shlex.quote(key)})" = {value} ]')


def with_settings(lines: list[str], wanted: dict[str, str]) -> str:
    """login.defs with each of ``wanted``'s keys set once, in place of its first uncommented
    line (other lines for it dropped), or appended when it has none."""
    result, done = [], set()
    for line in lines:
        words = line.split()
        key = words[0] if words and not words[0].startswith("#") else None
        if key in wanted:
            if key not in done:
                result.append(f"{key}\t{wanted[key]}")
                done.add(key)
            continue
        result.append(line)
    result += [f"{key}\t{value}" for key, value in wanted.items() if key not in done]
    return text_of(result)


def with_block(lines: list[str], block: list[str]) -> str:
    """A file's lines with the managed block (between our markers) replaced by ``block``, or
    appended when it has none; an empty ``block`` removes it."""
    kept, inside = [], False
    for line in lines:
        if line == BLOCK_START:
            inside = True
        elif line == BLOCK_END and inside:
            inside = False
        elif not inside:
            kept.append(line)
    return text_of(kept + ([BLOCK_START, *block, BLOCK_END] if block else []))


@dataclass(frozen=True)
class SecuritySuite:
    """The security updates' apt source of a release, and how to tell one is configured."""

    line: str
    suite: str


def security_suite(distribution: LinuxDistributionDict) -> SecuritySuite | None:
    codename = (distribution.get("release_meta") or {}).get("VERSION_CODENAME")
    if not codename:
        return None
    if distribution.get("name") == "Ubuntu":
        return SecuritySuite(
            f"deb http://security.ubuntu.com/ubuntu {codename}-security main restricted universe multiverse",
            f"{codename}-security",
        )
    return SecuritySuite(f"deb http://deb.debian.org/debian-security {codename}-security main", f"{codename}-security")


class AptSuites(FactBase[list[str]]):
    """The suites apt fetches package lists from (``bookworm-security``, ...), whichever file
    or format (one-line or deb822) names them."""

    def command(self) -> str:
        return "apt-get indextargets --format '$(CODENAME)' 2>/dev/null | sort -u"

    default = list

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]


class PendingSecurityUpdates(FactBase[list[str]]):
    """Installed packages with a newer version in a security suite, as apt would upgrade them
    now (a simulation: nothing changes, no lock is taken)."""

    def command(self) -> str:
        return "apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | awk '/^Inst / && /-[Ss]ecurity/ { print $2 }'"

    default = list

    def process(self, output: list[str]) -> list[str]:
        return sorted(line.strip() for line in output if line.strip())


@compat.announces_reads(lambda **_: [(PendingSecurityUpdates, {})])
@operation()
def security_updates_installed() -> Any:
    """
    Install the security updates pending for installed packages (configuration files kept as
    they are), so a host starts hardened rather than waiting for the first nightly run.
    """
    pending = host.get_fact(PendingSecurityUpdates)
    if not pending:
        host.noop("no security updates pending")
        return
    host.log(f"Security updates for: {', '.join(pending)}")
    yield StringCommand(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --only-upgrade "
        "-o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef "
        + " ".join(shlex.quote(package) for package in pending)
    )


class ExecutableByOthers(FactBase[list[str]]):
    """Which of ``paths`` exist (links followed) with an execute bit for others, as their real
    files."""

    def command(self, paths: tuple[str, ...]) -> str:
        quoted = " ".join(shlex.quote(path) for path in paths)
        return (
            f'for path in {quoted}; do real=$(readlink -f "$path") || continue; '
            '[ -f "$real" ] && [ -n "$(find "$real" -perm -o=x)" ] && echo "$real"; done | sort -u; true'
        )

    default = list

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]


@compat.announces_reads(lambda paths, **_: [(ExecutableByOthers, {"paths": tuple(paths)})])
@operation()
def root_only_executables(paths: list[str]) -> Any:
    """
    The real files behind ``paths`` runnable by root and their group only (mode 750), through
    dpkg-statoverride so package upgrades keep the mode.

    + paths: commands to restrict (missing ones are skipped)
    """
    found = host.get_fact(ExecutableByOthers, paths=tuple(paths))
    if not found:
        host.noop("no listed command is runnable by others")
        return
    for real in found:
        quoted = shlex.quote(real)
        yield StringCommand(
            f"dpkg-statoverride --remove {quoted} >/dev/null 2>&1; "
            f"dpkg-statoverride --update --add root root 750 {quoted}"
        )


# What a login shell reads: it runs as the user, so nobody else may change it or read it.
SHELL_START_FILES = (
    ".profile",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".zshrc",
    ".zprofile",
    ".zlogin",
    ".zlogout",
    ".cshrc",
    ".login",
    ".logout",
)


class OpenToOthers(FactBase[list[tuple[str, str]]]):
    """People's files others may reach: ("home", path) for a home folder of an account with a
    login (uid 1000 and up) that others may enter or its group may write, ("start", path) for a
    shell start file there or in /etc/skel (what new homes are copied from) that others may read
    or its group may write or run. Links are left alone, and other files are their owner's
    business (sudo's marker file, say, appears at an admin's first sudo)."""

    def command(self) -> str:
        names = " -o ".join(f"-name {name}" for name in SHELL_START_FILES)
        return (
            "awk -F: '$3 >= 1000 && $3 != 65534 && $6 != \"/\" {print $6}' /etc/passwd | sort -u | "
            'while read -r home; do [ -d "$home" ] || continue; '
            'find "$home" -maxdepth 0 -perm /027 -printf "home %p\\n"; '
            f'find "$home" -mindepth 1 -maxdepth 1 \\( {names} \\) -type f -perm /037 -printf "start %p\\n"; done; '
            f"find /etc/skel -mindepth 1 -maxdepth 1 \\( {names} \\) -type f -perm /037 -printf 'start %p\\n'; true"
        )

    default = list

    def process(self, output: list[str]) -> list[tuple[str, str]]:
        return [(kind, path) for kind, _, path in (line.partition(" ") for line in output) if path]


@compat.announces_reads(lambda **_: [(OpenToOthers, {})])
@operation()
def private_homes() -> Any:
    """
    Home folders shut to others and closed to their group's writes (login.defs' HOME_MODE 0750
    for existing ones); shell start files there and in /etc/skel readable by owner and group only.
    """
    found = host.get_fact(OpenToOthers)
    if not found:
        host.noop("no home folder or start file is open to others")
        return
    homes = " ".join(shlex.quote(path) for kind, path in found if kind == "home")
    starts = " ".join(shlex.quote(path) for kind, path in found if kind == "start")
    if homes:
        yield StringCommand(f"chmod g-w,o= {homes}")
    if starts:
        yield StringCommand(f"chmod g-wx,o= {starts}")


def profile_block(settings: OsHardeningSettings) -> list[str]:
    lines = ["# No core dumps: they can hold passwords and keys from memory.", "ulimit -c 0 2>/dev/null"]
    if settings.shell_idle_timeout:
        lines += [
            "# Idle interactive shells exit (an unattended root shell is an open door).",
            f"TMOUT={settings.shell_idle_timeout}",
            "readonly TMOUT",
            "export TMOUT",
        ]
    return lines


def facts_read_first() -> compat.FactReads:
    """What ``os_hardening`` reads while it loads (each package install reads DebPackages)."""
    return [
        (AptSuites, {}),
        (LinuxDistribution, {}),
        (DebPackages, {}),
        *((FileContents, {"path": path}) for path in (LOGIN_DEFS, PROFILE)),
        (FindInFile, SYSSTAT_ENABLED),
    ]


@deploy("Operating system hardening")
def os_hardening() -> None:
    """
    The operating system beyond the guide: kernel parameters (written for boot, set live where
    the host may), login.defs, no core dumps, unused kernel modules off, legal banners, idle
    shells ended, process and resource accounting, package checks, and security updates from
    the security suite every day.

    Example:

    .. code:: python

        from pyinfra_hardening import os_hardening
        os_hardening.os_hardening()
    """
    settings = settings_for(host, OsHardeningSettings)
    compat.read_facts_at_once(facts_read_first())
    suite = security_suite(host.get_fact(LinuxDistribution))
    if settings.security_updates and suite and suite.suite not in host.get_fact(AptSuites):
        source = validated_file(
            name=f"apt: security updates from {suite.suite}",
            dest=SECURITY_SOURCES,
            content=f"# Managed by pyinfra-hardening: security updates.\n{suite.line}\n",
            validator=None,
        )
        apt.update(name=f"apt reads {suite.suite}", _if=any_changed(source))
    for folder in (ACCT_DROP_IN, COREDUMP_DROP_IN, MODPROBE_FILE, CORE_LIMITS, NEEDRESTART_DROP_IN):
        directory(name=f"Folder {dirname(folder)}", path=dirname(folder), user="root", group="root", mode="755")
    # Before the package starts it: skipped in a container instead of failing there.
    accounting_unit = validated_file(
        name="Process accounting: skipped in containers",
        dest=ACCT_DROP_IN,
        content=render(ACCT_DROP_IN),
        validator=None,
    )
    systemd.daemon_reload(name="Reload systemd units", _if=any_changed(accounting_unit))
    ensure_packages("Install accounting, package checks and the CA bundle", BASELINE_PACKAGES)
    if settings.security_updates:
        security_updates_installed(name="Install pending security updates")
    # needrestart needs binutils: its assembler (and any compiler) is root's alone.
    root_only_executables(name="Compilers runnable by root only", paths=COMPILERS)

    validated_file(
        name="Kernel parameters for boot",
        dest=SYSCTL_FILE,
        content=kernel_parameters_text(settings.kernel_parameters),
        validator=None,
    )
    live_kernel_parameters(name="Kernel parameters, live", parameters=settings.kernel_parameters)

    rounds = str(settings_for(host, PasswordSettings).password_hash_rounds)
    login_defs = {
        "UMASK": settings.login_umask,
        "HOME_MODE": "0750",
        "PASS_MAX_DAYS": str(settings.password_max_days),
        "PASS_MIN_DAYS": str(settings.password_min_days),
        "PASS_WARN_AGE": str(settings.password_warn_days),
        # For shadow's tools that hash without PAM (newusers, chpasswd -c): Debian's own, and what
        # ANSSI BP-028's profiles ask of login.defs (of pam_unix they ask rounds: see passwords).
        "ENCRYPT_METHOD": "YESCRYPT",
        "SHA_CRYPT_MIN_ROUNDS": rounds,
        "SHA_CRYPT_MAX_ROUNDS": rounds,
    }
    validated_file(
        name="login.defs: umask, password ageing, hashing rounds",
        dest=LOGIN_DEFS,
        content=with_settings(host.get_fact(FileContents, path=LOGIN_DEFS) or [], login_defs),
        validator=None,
    )
    if settings.private_home_folders:
        private_homes(name="Home folders and shell start files: nothing for others")
    # Locked or not, root's password is held to the same age limit as a new account's.
    accounts.password_max_age(
        name=f"root's password expires after {settings.password_max_days} days",
        user="root",
        days=settings.password_max_days,
    )
    validated_file(
        name="/etc/profile: no core dumps, idle shells exit",
        dest=PROFILE,
        content=with_block(host.get_fact(FileContents, path=PROFILE) or [], profile_block(settings)),
        validator="sh -n {}",
    )
    validated_file(
        name="No core dumps (limits)",
        dest=CORE_LIMITS,
        content=render(CORE_LIMITS),
        validator=None,
    )
    validated_file(
        name="No core dumps (systemd-coredump)",
        dest=COREDUMP_DROP_IN,
        content=render(COREDUMP_DROP_IN),
        validator=None,
    )
    validated_file(
        name="Unused kernel modules never load",
        dest=MODPROBE_FILE,
        content=render(MODPROBE_FILE, modules=settings.disabled_kernel_modules),
        validator=None,
    )
    for path in ISSUE_FILES:
        validated_file(name=f"Legal banner in {path}", dest=path, content=settings.login_banner + "\n", validator=None)

    # pyinfra's own line edit reads the file when it runs: the package writes it in this run.
    files.line(name="sysstat collects", path=SYSSTAT_DEFAULTS, line=SYSSTAT_ENABLED_LINE, replace='ENABLED="true"')
    services.unit_running(name="sysstat runs and starts at boot", unit="sysstat")
    validated_file(
        name="needrestart lists, never restarts, services on its own",
        dest=NEEDRESTART_DROP_IN,
        content=render(NEEDRESTART_DROP_IN),
        validator="perl -c {} 2>/dev/null",
    )
    validated_file(
        name="Daily security updates" if settings.security_updates else "No unattended updates",
        dest=AUTO_UPGRADES,
        content=render(AUTO_UPGRADES, enabled=settings.security_updates),
        validator="apt-config -c {} dump >/dev/null",
    )
    validated_file(
        name="Unattended upgrades: security only, reboot policy",
        dest=UNATTENDED_UPGRADES,
        content=render(UNATTENDED_UPGRADES, reboot_time=settings.security_reboot_time),
        validator="apt-config -c {} dump >/dev/null",
    )
