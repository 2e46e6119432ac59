"""Passwords through PAM: the quality of a new one (guide 3.4), its history and how it is hashed,
and an account locked after repeated failed logins (pam_faillock), as pam-auth-update profiles.

Debian 12+ and Ubuntu 24.04 have no pam_cracklib; pam_pwquality takes the same arguments. A
host that already runs pam_cracklib keeps it, with our values.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field, model_validator
from pyinfra import host, state
from pyinfra.api import StringCommand, deploy, operation
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import FileContents

from . import compat
from .data_types import HostSettings, one_of, refuse, whole_number
from .managed_files import print_diff, render, text_of, validated_file
from .packages import ensure_packages
from .settings import settings_for

PAM_CONFIGS = "/usr/share/pam-configs"
PWQUALITY_CONF = "/etc/security/pwquality.conf"
FAILLOCK_CONF = "/etc/security/faillock.conf"
# cracklib-runtime holds the word list both modules check against; without it every password fails.
MODULE_PACKAGES = {
    "pwquality": ["libpam-pwquality", "cracklib-runtime"],
    "cracklib": ["libpam-cracklib", "cracklib-runtime"],
}
# This project's pam-auth-update profiles (one per place in the stack: a profile has one
# priority), and the files pam-auth-update builds from them.
PASSWORD_PROFILE = "pyinfra-hardening-passwords"
FAILLOCK_PROFILE = "pyinfra-hardening-faillock"
PREAUTH_PROFILE = "pyinfra-hardening-faillock-preauth"
UNIX_PROFILE = "pyinfra-hardening-unix"
# The packages' profiles this project's replace.
REPLACED_PROFILES = ["pwquality", "cracklib", "unix"]
COMMON_FILES = (
    "/etc/pam.d/common-auth",
    "/etc/pam.d/common-account",
    "/etc/pam.d/common-password",
    "/etc/pam.d/common-session",
)


class PasswordSettings(HostSettings):
    title = "Passwords and failed logins"

    password_retry: Annotated[int, whole_number(1, 10)] = Field(
        3, description="tries to type an acceptable new password (guide 3.4)"
    )
    password_minlen: Annotated[int, whole_number(8, 128)] = Field(
        15,
        description="minimum length of a new password: 15, as NIST SP 800-63B-4 and ANSSI BP-028 ask "
        "(the guide's 10 is dated)",
    )
    password_minclass: Annotated[int, whole_number(0, 4)] = Field(
        4, description="kinds of character (upper, lower, digit, symbol) a new password must mix (ANSSI BP-028)"
    )
    password_difok: Annotated[int, whole_number(0, 64)] = Field(
        3, description="characters that must differ from the old password (guide 3.4)"
    )
    password_ucredit: Annotated[int, whole_number(-10, 10)] = Field(
        -1, description="negative: at least that many uppercase letters (guide 3.4)"
    )
    password_lcredit: Annotated[int, whole_number(-10, 10)] = Field(
        -2, description="negative: at least that many lowercase letters (guide 3.4)"
    )
    password_dcredit: Annotated[int, whole_number(-10, 10)] = Field(
        -1, description="negative: at least that many digits (guide 3.4)"
    )
    password_ocredit: Annotated[int, whole_number(-10, 10)] = Field(
        -1, description="negative: at least that many symbols (guide 3.4)"
    )
    password_remember: Annotated[int, whole_number(0, 400)] = Field(
        5, description="a user's last passwords a new one may not repeat (pam_pwhistory; 0: none)"
    )
    faillock_deny: Annotated[int, whole_number(1, 100)] = Field(
        3,
        description="failed password logins (sudo, su, a console) within faillock_fail_interval that lock an "
        "account; root is never locked, and a successful SSH login (key and TOTP) clears the count",
    )
    faillock_fail_interval: Annotated[int, whole_number(60, 86400)] = Field(
        900, description="seconds within which failed logins count towards faillock_deny"
    )
    faillock_unlock_time: Annotated[int, whole_number(0, 86400)] = Field(
        900,
        description="seconds a locked account stays locked (0: until root runs 'faillock --user NAME --reset')",
    )
    password_hashing: Annotated[str, one_of("sha512", "yescrypt")] = Field(
        "sha512",
        description="how PAM hashes a new password (passwd, chpasswd): 'sha512' with password_hash_rounds "
        "rounds, as ANSSI BP-028 asks; 'yescrypt' at Debian's own cost is memory-hard but fails OpenSCAP's "
        "rounds rule, whose one yescrypt value (cost 11) takes 1 GiB and 1.3 s a hash",
    )
    password_hash_rounds: Annotated[int, whole_number(5000, 9999999)] = Field(
        65536,
        description="SHA-512 rounds of a new password's hash (PAM, and login.defs when asked for SHA-512): 65536 "
        "take 16 ms of one core for each check (a sudo); more slow a guesser and each sudo alike",
    )

    @model_validator(mode="after")
    def _satisfiable(self) -> PasswordSettings:
        credits = (self.password_ucredit, self.password_lcredit, self.password_dcredit, self.password_ocredit)
        required = sum(-credit for credit in credits if credit < 0)
        if required > self.password_minlen:
            raise refuse(
                "password_minlen",
                f"is shorter than the {required} characters the credits require",
                f"raise password_minlen to at least {required} or relax the credits",
            )
        if self.password_difok > self.password_minlen:
            raise refuse(
                "password_difok", "is larger than password_minlen", "use a value no larger than password_minlen"
            )
        return self

    def quality_settings(self) -> dict[str, int]:
        """What pam_pwquality and pam_cracklib both understand, in the guide's order."""
        names = ("retry", "minlen", "minclass", "difok", "ucredit", "lcredit", "dcredit", "ocredit")
        return {name: getattr(self, f"password_{name}") for name in names}

    def module_arguments(self) -> str:
        return " ".join(f"{name}={value}" for name, value in self.quality_settings().items())

    def pam_unix_hashing(self) -> str:
        """pam_unix's arguments for how it hashes a new password."""
        if self.password_hashing == "sha512":
            return f"sha512 rounds={self.password_hash_rounds}"
        return "yescrypt"


def quality_module() -> str:
    return "cracklib" if "libpam-cracklib" in host.get_fact(DebPackages) else "pwquality"


@dataclass(frozen=True)
class PamProfile:
    """A pam-auth-update profile, and the lines pam-auth-update writes from it.

    Written here rather than as a template: the operation that enables the profiles checks the
    common-* files for exactly these lines, so both come from one definition."""

    name: str
    title: str
    priority: int  # where its lines go among the other profiles' (higher: earlier)
    # "Auth", "Account", "Session" or "Password" -> "control module arguments" lines
    stacks: dict[str, list[str]]
    conflicts: tuple[str, ...] = ()
    # Stack -> its lines where they differ when they come first in the stack (no password typed yet).
    first: dict[str, list[str]] = field(default_factory=dict)
    # Stacks whose lines never end it; an account line of the project's own comes after pam_unix's.
    additional: tuple[str, ...] = ("Account",)

    def text(self) -> str:
        lines = [f"Name: {self.title}", "Default: yes", f"Priority: {self.priority}"]
        if self.conflicts:
            lines.append(f"Conflicts: {', '.join(self.conflicts)}")
        for stack, entries in self.stacks.items():
            kind = "Additional" if stack in self.additional else "Primary"
            lines += [f"{stack}-Type: {kind}", f"{stack}:", *(f"\t{entry}" for entry in entries)]
            if kind == "Primary":
                lines += [f"{stack}-Initial:", *(f"\t{entry}" for entry in self.first.get(stack, entries))]
        return text_of(lines)

    def common_lines(self) -> dict[str, list[str]]:
        """common-* file -> its lines from this profile, as pam-auth-update writes them where they
        do not come first (whitespace normalised; a jump to ``end`` as written, see same_jumps)."""
        return {
            f"/etc/pam.d/common-{stack.lower()}": [f"{stack.lower()} {' '.join(entry.split())}" for entry in entries]
            for stack, entries in self.stacks.items()
        }


def pam_profiles(settings: PasswordSettings, module: str) -> list[PamProfile]:
    """The quality module (with its arguments) and pam_pwhistory where a new password is set;
    pam_faillock around pam_unix where a password logs in (its limits are in faillock.conf)."""
    password = [f"requisite pam_{module}.so {settings.module_arguments()}"]
    if settings.password_remember:
        password.append(f"requisite pam_pwhistory.so remember={settings.password_remember} use_authtok")
    return [
        # Before pam_unix (256); in place of the packages' own quality profiles (1024).
        PamProfile(
            PASSWORD_PROFILE,
            "New passwords: quality and history (pyinfra-hardening)",
            1024,
            {"Password": password},
            conflicts=("pwquality", "cracklib"),
        ),
        # First of all: a locked account is refused before any password is checked.
        PamProfile(
            PREAUTH_PROFILE,
            "Failed logins: refuse a locked account (pyinfra-hardening)",
            1025,
            {"Auth": ["required pam_faillock.so preauth"]},
        ),
        # After pam_unix: a failure is counted; the account stage clears the count of a success.
        PamProfile(
            FAILLOCK_PROFILE,
            "Failed logins: count them, lock after faillock_deny (pyinfra-hardening)",
            0,
            {
                "Auth": ["[default=die] pam_faillock.so authfail", "sufficient pam_faillock.so authsucc"],
                "Account": ["required pam_faillock.so"],
            },
        ),
        unix_profile(settings),
    ]


def unix_profile(settings: PasswordSettings) -> PamProfile:
    """libpam-runtime's own "unix" profile (the same on Debian 12 and 13 and Ubuntu 22.04 and 24.04),
    in its place: new passwords hashed as ``password_hashing`` says, and no login with an empty
    password (no ``nullok``)."""
    hashing = settings.pam_unix_hashing()
    return PamProfile(
        UNIX_PROFILE,
        "Unix authentication, new passwords hashed as configured (pyinfra-hardening)",
        256,
        {
            "Auth": ["[success=end default=ignore] pam_unix.so try_first_pass"],
            "Account": ["[success=end new_authtok_reqd=done default=ignore] pam_unix.so"],
            "Session": ["required pam_unix.so"],
            "Password": [f"[success=end default=ignore] pam_unix.so obscure use_authtok try_first_pass {hashing}"],
        },
        first={
            "Auth": ["[success=end default=ignore] pam_unix.so"],
            "Password": [f"[success=end default=ignore] pam_unix.so obscure {hashing}"],
        },
        additional=("Session",),
    )


def wanted_common_lines(profiles: list[PamProfile]) -> dict[str, list[str]]:
    wanted: dict[str, list[str]] = {path: [] for path in COMMON_FILES}
    # In the order pam-auth-update writes them: higher priority first.
    for profile in sorted(profiles, key=lambda profile: -profile.priority):
        for path, lines in profile.common_lines().items():
            wanted[path] += lines
    return wanted


def lines_naming(lines: list[str], modules: set[str]) -> list[str]:
    """``lines`` that use one of ``modules``, whitespace and jumps normalised, comments left out."""
    found = []
    for line in lines:
        words = line.split()
        # The module is the first .so word: a bracketed control may span several words.
        module = next((word for word in words[1:] if word.endswith(".so")), None)
        if words and not words[0].startswith("#") and module in modules:
            found.append(same_jumps(" ".join(words)))
    return found


def same_jumps(line: str) -> str:
    """``line`` with a jump over N lines written as a profile writes it: pam-auth-update turns a
    jump to ``end`` (of the stack's primary lines) into the count of lines it skips, which
    depends on what other profiles are enabled."""
    return re.sub(r"\bsuccess=[0-9]+", "success=end", line)


def modules_of(lines: list[str]) -> set[str]:
    return {word for line in lines for word in line.split() if word.startswith("pam_") and word.endswith(".so")}


@compat.announces_reads(lambda **_: [(FileContents, {"path": path}) for path in COMMON_FILES])
@operation()
def pam_profiles_enabled(enable: list[str], disable: list[str], wanted: dict[str, list[str]]) -> Any:
    """
    Enable this project's pam-auth-update profiles (written before this runs) in place of
    ``disable``, so that each common-* file's lines for their modules are exactly ``wanted``.

    + enable: profile names in /usr/share/pam-configs
    + disable: profiles they replace (the packages' own quality profiles)
    + wanted: common-* path -> its lines for these modules, whitespace normalised

    Decided on the files as they are, read again when it runs: a module package installed
    earlier in the run has pam-auth-update rewrite them by then. pam-auth-update runs with
    ``--force`` (the common files are its output, and this project's earlier releases edited
    common-password by hand); the previous files come back if any line is then missing or any
    module the stack names is not installed, since a broken stack refuses every sudo.
    """
    current = {path: host.get_fact(FileContents, path=path) or [] for path in wanted}
    drifted = {path: lines_naming(current[path], modules_of(lines)) for path, lines in wanted.items()}
    if all(drifted[path] == lines for path, lines in wanted.items()):
        modules = modules_of([line for lines in wanted.values() for line in lines])
        host.noop(f"PAM runs {', '.join(sorted(modules))} as configured")
        return
    if state.config.DIFF:
        for path, lines in wanted.items():
            if drifted[path] != lines:
                print_diff(path, drifted[path], text_of(lines))
    checks = " && ".join(
        f"grep -Eq {shlex.quote(line_pattern(line))} {path}" for path, lines in wanted.items() for line in lines
    )
    saved = " ".join(f"{path} {path}.pyinfra-hardening-old" for path in wanted)
    yield StringCommand(
        f"for f in {' '.join(wanted)}; do cp -p $f $f.pyinfra-hardening-old; done && "
        f"DEBIAN_FRONTEND=noninteractive pam-auth-update --force --enable {' '.join(enable)} "
        f"--disable {' '.join(disable)} && "
        f"{{ {checks} && {MODULES_INSTALLED} || {{ "
        f"for f in {' '.join(wanted)}; do mv $f.pyinfra-hardening-old $f; done; "
        "echo 'hardening: pam-auth-update did not give the PAM stack this project asked for; "
        f"the previous files are back ({saved})' >&2; exit 1; }}; }} && "
        f"rm -f {' '.join(f'{path}.pyinfra-hardening-old' for path in wanted)}"
    )


def line_pattern(line: str) -> str:
    """An extended regex for ``line`` with any whitespace between its words, and any count where
    it jumps to ``end`` (see same_jumps)."""
    # re.escape would also escape '-', which grep -E warns about.
    words = (re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", word) for word in line.split())
    return ("^" + "[[:space:]]+".join(words) + "[[:space:]]*$").replace("success=end", "success=[0-9]+")


# Every module the common files name is installed (a missing one fails every login through them).
MODULES_INSTALLED = (
    "for m in $(cat /etc/pam.d/common-* | grep -v '^#' | grep -oE 'pam_[a-z0-9_]+\\.so' | sort -u); do "
    "ls /lib/*/security/$m /usr/lib/*/security/$m /lib/security/$m 2>/dev/null | grep -q . || "
    '{ echo "hardening: PAM module $m is not installed" >&2; false; } || exit 1; done'
)


@deploy("Passwords and failed logins")
def password_quality() -> None:
    """
    Every new password set through PAM must pass pam_pwquality (or a pam_cracklib the host
    already runs) with the ``password_*`` settings (guide 3.4) and differ from the user's last
    ``password_remember`` ones; ``faillock_deny`` failed password logins lock an account for
    ``faillock_unlock_time`` seconds. All through pam-auth-update profiles of this project's.

    Example:

    .. code:: python

        from pyinfra_hardening import passwords
        passwords.password_quality()
    """
    settings = settings_for(host, PasswordSettings)
    module = quality_module()
    ensure_packages(f"Install the PAM {module} module and its word list", MODULE_PACKAGES[module])
    if module == "pwquality":
        # The same values for programs that read libpwquality's file rather than PAM's arguments.
        validated_file(
            name=f"{PWQUALITY_CONF}: the same rules",
            dest=PWQUALITY_CONF,
            content=render(PWQUALITY_CONF, settings=settings.quality_settings()),
            validator=None,
        )
    validated_file(
        name=f"{FAILLOCK_CONF}: when failed logins lock an account",
        dest=FAILLOCK_CONF,
        content=render(FAILLOCK_CONF, settings=settings),
        validator=None,
    )
    profiles = pam_profiles(settings, module)
    for profile in profiles:
        validated_file(
            name=f"pam-auth-update profile {profile.name}",
            dest=f"{PAM_CONFIGS}/{profile.name}",
            content=profile.text(),
            validator=None,
        )
    pam_profiles_enabled(
        name=f"PAM: pam_{module} ({settings.module_arguments()}), password history, faillock, "
        f"{settings.password_hashing} hashes",
        enable=[profile.name for profile in profiles],
        disable=REPLACED_PROFILES,
        wanted=wanted_common_lines(profiles),
    )
