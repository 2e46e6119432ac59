"""Password quality for every password change through PAM (guide 3.4).

Debian 12+ and Ubuntu 24.04 have no pam_cracklib; pam_pwquality takes the same arguments. A
host that already runs pam_cracklib keeps it, with our values.
"""

from __future__ import annotations

import shlex

from pyinfra import host, state
from pyinfra.api import StringCommand, deploy, operation
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import FileContents

from .files import print_diff
from .packages import ensure_packages
from .settings import Settings

COMMON_PASSWORD = "/etc/pam.d/common-password"
# The line pam-auth-update writes for either module; the module's arguments follow .so
# cracklib-runtime holds the word list both modules check against; without it every password fails.
MODULE_PACKAGES = {
    "pwquality": ["libpam-pwquality", "cracklib-runtime"],
    "cracklib": ["libpam-cracklib", "cracklib-runtime"],
}
MODULE_LINE_SED = r"^password[[:space:]]+requisite[[:space:]]+pam_(pwquality|cracklib)\.so.*$"


def quality_module() -> str:
    return "cracklib" if "libpam-cracklib" in host.get_fact(DebPackages) else "pwquality"


@operation()
def pam_password_quality(module: str, arguments: str):
    """Give the quality module's line in common-password exactly ``arguments``.

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
def password_quality(settings: Settings):
    module = quality_module()
    ensure_packages(f"Install the PAM {module} module and its word list", MODULE_PACKAGES[module])
    pam_password_quality(
        name=f"New passwords must pass pam_{module} ({settings.password_policy.module_arguments()})",
        module=module,
        arguments=settings.password_policy.module_arguments(),
    )
