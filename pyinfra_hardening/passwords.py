"""Password quality for every password change through PAM (guide 3.4).

Debian 12+ and Ubuntu 24.04 have no pam_cracklib; pam_pwquality takes the same arguments. A
host that already runs pam_cracklib keeps it, with our values.
"""

from __future__ import annotations

import shlex
from typing import Annotated, Any

from pydantic import Field, model_validator
from pyinfra import host, state
from pyinfra.api import StringCommand, deploy, operation
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import FileContents

from . import compat
from .data_types import HostSettings, refuse, whole_number
from .managed_files import print_diff
from .packages import ensure_packages
from .settings import settings_for

COMMON_PASSWORD = "/etc/pam.d/common-password"
# The line pam-auth-update writes for either module; the module's arguments follow .so
# cracklib-runtime holds the word list both modules check against; without it every password fails.
MODULE_PACKAGES = {
    "pwquality": ["libpam-pwquality", "cracklib-runtime"],
    "cracklib": ["libpam-cracklib", "cracklib-runtime"],
}
MODULE_LINE_SED = r"^password[[:space:]]+requisite[[:space:]]+pam_(pwquality|cracklib)\.so.*$"


class PasswordSettings(HostSettings):
    title = "Password quality"

    password_retry: Annotated[int, whole_number(1, 10)] = Field(
        3, description="tries to type an acceptable new password (guide 3.4)"
    )
    password_minlen: Annotated[int, whole_number(8, 128)] = Field(
        10, description="minimum length of a new password (guide 3.4)"
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

    def module_arguments(self) -> str:
        """The arguments pam_pwquality and pam_cracklib both understand, in the guide's order."""
        return " ".join(
            f"{name}={getattr(self, f'password_{name}')}"
            for name in ("retry", "minlen", "difok", "ucredit", "lcredit", "dcredit", "ocredit")
        )


def quality_module() -> str:
    return "cracklib" if "libpam-cracklib" in host.get_fact(DebPackages) else "pwquality"


@compat.announces_reads(lambda **_: [(FileContents, {"path": COMMON_PASSWORD})])
@operation()
def pam_password_quality(module: str, arguments: str) -> Any:
    """
    Give the quality module's line in common-password exactly ``arguments``.

    + module: ``pwquality`` or ``cracklib``
    + arguments: the module's arguments, as ``PasswordSettings.module_arguments()`` gives them

    The line appears only once the module's package is installed, which may be later in this
    same run, so the edit is a sed run then, followed by a check that the line is there.
    """
    wanted = f"password\trequisite\t\t\tpam_{module}.so {arguments}"
    lines = host.get_fact(FileContents, path=COMMON_PASSWORD) or []
    if wanted in lines:
        host.noop(f"pam_{module} already has {arguments}")
        return
    if state.config.DIFF:
        old = [line for line in lines if f"pam_{module}.so" in line]
        print_diff(COMMON_PASSWORD, old, wanted + "\n")
    sed_replacement = wanted.replace("\t", "\\t")
    yield StringCommand(
        f"sed -i -E {shlex.quote(f's/{MODULE_LINE_SED}/{sed_replacement}/')} {COMMON_PASSWORD} && "
        f"grep -qxF {shlex.quote(wanted)} {COMMON_PASSWORD} || "
        f"{{ echo 'hardening: no pam_{module} line in {COMMON_PASSWORD} to configure' >&2; exit 1; }}"
    )


@deploy("Password quality")
def password_quality() -> None:
    """
    Every new password set through PAM must pass pam_pwquality (or a pam_cracklib the host
    already runs) with the ``password_*`` settings (guide 3.4).

    Example:

    .. code:: python

        from pyinfra_hardening import passwords
        passwords.password_quality()
    """
    settings = settings_for(host, PasswordSettings)
    module = quality_module()
    ensure_packages(f"Install the PAM {module} module and its word list", MODULE_PACKAGES[module])
    pam_password_quality(
        name=f"New passwords must pass pam_{module} ({settings.module_arguments()})",
        module=module,
        arguments=settings.module_arguments(),
    )
