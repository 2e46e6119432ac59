"""Audit trail: the kernel's audit subsystem, through auditd, records every change to who may
log in and with what rights (accounts, sudo, PAM, SSH), to the firewall, scheduled jobs, the
clock, the host's name and kernel modules, to the audit rules themselves, and every sudo and
mount by a person. Each record names the admin who logged in (the login uid survives sudo).

The audit subsystem belongs to the kernel, the host's in a container: there the rules are
written, auditd's unit is skipped (``ConditionVirtualization=!container``) and the rules are not
loaded, and the run says so. On a VM auditd runs and loads them at every boot.
"""

from __future__ import annotations

from posixpath import dirname
from typing import Any

from pydantic import Field
from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.facts.server import Arch
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from . import compat, services
from .data_types import Flag, HostSettings
from .managed_files import directory, render, validated_file
from .packages import ensure_packages
from .services import InContainer
from .settings import settings_for

CONFIG_DIR = "/etc/audit"
RULES_DIR = f"{CONFIG_DIR}/rules.d"
RULES_FILE = f"{RULES_DIR}/pyinfra-hardening.rules"  # read after Debian's audit.rules, which clears
UNIT_DROP_IN = "/etc/systemd/system/auditd.service.d/pyinfra-hardening.conf"
LOG_DIR = "/var/log/audit"


class AuditTrailSettings(HostSettings):
    title = "Audit trail"

    audit_trail: Flag = Field(
        True,
        description="auditd records changes to accounts, sudo, PAM, SSH, the firewall, cron, the clock and "
        "kernel modules, and every sudo and mount by a person (skipped in containers: the audit subsystem "
        "is the host kernel's)",
    )
    audit_trail_immutable: Flag = Field(
        False,
        description="lock the loaded rules until the next reboot (-e 2): not even root can switch auditing off, "
        "but a changed rule set then waits for a reboot",
    )


def system_call_arches(machine: str) -> list[str]:
    """The audit arches whose system calls are watched: a 64-bit x86 kernel runs 32-bit
    programs too, whose calls a 64-bit rule does not see."""
    return ["b64", "b32"] if machine == "x86_64" else ["b64"]


def rules_text(settings: AuditTrailSettings, machine: str) -> str:
    return render(RULES_FILE, arches=system_call_arches(machine), immutable=settings.audit_trail_immutable)


class AuditRules(FactBase["str | None"]):
    """What the kernel runs: ``current`` (the rules in /etc/audit/rules.d, as augenrules last
    loaded them), ``changed``, or ``immutable`` (other rules, locked until the next reboot);
    None where auditctl cannot ask the kernel (not installed, or auditing off at boot)."""

    def command(self) -> str:
        return (
            "command -v auditctl >/dev/null && auditctl -s >/dev/null 2>&1 || { echo none; exit 0; }; "
            # grep reads all of augenrules' output: with -q it would stop early, and augenrules
            # would print an I/O error for its next line.
            "if augenrules --check | grep 'No change' >/dev/null && ! auditctl -l | grep -qx 'No rules'; "
            "then echo current; "
            "elif auditctl -s | grep -qx 'enabled 2'; then echo immutable; else echo changed; fi"
        )

    def process(self, output: list[str]) -> str | None:
        state = output[0].strip()
        return None if state == "none" else state


@compat.announces_reads(lambda **_: [(InContainer, {}), (AuditRules, {})])
@operation()
def rules_loaded() -> Any:
    """
    Load the rules of /etc/audit/rules.d into the kernel (``augenrules --load``) where it runs
    others; in a container, or with rules locked until the next reboot, say why not instead.
    """
    if host.get_fact(InContainer):
        host.noop("audit rules not loaded: in a container the audit subsystem is the host kernel's")
        return
    state = host.get_fact(AuditRules)
    if state == "current":
        host.noop("the kernel runs these audit rules")
    elif state == "immutable":
        host.noop("the kernel's audit rules are locked until the next reboot (-e 2): the new ones load then")
    elif state is None:
        host.noop("audit rules not loaded: the kernel's auditing is off (audit=0 at boot?)")
    else:
        yield StringCommand("augenrules --load")


def facts_read_first() -> compat.FactReads:
    """What ``audit_trail`` reads while it loads."""
    return [(InContainer, {}), (Arch, {})]


@deploy("Audit trail")
def audit_trail() -> None:
    """
    auditd with this project's rules (see the module's docstring), loaded and kept loaded.

    Example:

    .. code:: python

        from pyinfra_hardening import audit_trail
        audit_trail.audit_trail()
    """
    settings = settings_for(host, AuditTrailSettings)
    if not settings.audit_trail:
        return
    # Before the package starts it: skipped in a container instead of failing there over and over.
    directory(name=f"{dirname(UNIT_DROP_IN)} exists", path=dirname(UNIT_DROP_IN), mode="755")
    unit = validated_file(
        name="auditd: skipped in containers", dest=UNIT_DROP_IN, content=render(UNIT_DROP_IN), validator=None
    )
    systemd.daemon_reload(name="Reload systemd units", _if=any_changed(unit))
    # The rules are in place before the package's first start, which loads them (the folders
    # root's alone, as the package makes them).
    for folder in (CONFIG_DIR, RULES_DIR):
        directory(name=f"{folder} exists", path=folder, mode="750")
    # No check short of loading them: auditctl asks the kernel even to parse a rule.
    validated_file(
        name="Audit rules",
        dest=RULES_FILE,
        content=rules_text(settings, host.get_fact(Arch)),
        validator=None,
        mode="640",
    )
    ensure_packages("Install auditd", ["auditd"])
    services.unit_at_boot("auditd")
    rules_loaded(name="The kernel runs the audit rules")
