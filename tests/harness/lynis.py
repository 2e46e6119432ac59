"""Lynis, the judge of a host's hardening: its index, its warnings, and every point it took
away, each matched against the short list of losses this project explains.

Lynis 3.0.8 (Debian 12's package) audits every test host, Debian 12 and 13 alike, so the
figures compare. It logs each item's score as "assigned partial number of hardening points (A
of B)" after "Performing test ID X"; that is where the table of lost points comes from.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .containers import Machine
from .judge_packages import CACHE, cached, copy_to, install

LOG = "/var/log/lynis.log"
REPORT = "/var/log/lynis-report.dat"
CUSTOM_PROFILE = "/etc/lynis/custom.prf"  # Lynis reads it after its default profile

# Points Lynis takes that a container cannot earn (its kernel, mounts and devices are the
# host's), and points given up by choice, each with why. A test id alone covers all its items;
# with a detail, only items whose log line holds it.
CONTAINER = "container"
CHOICE = "choice"
EXPLAINED: dict[tuple[str, str], tuple[str, str]] = {
    ("KRNL-6000", ""): (
        CONTAINER,
        "kernel parameters are the container host's (/proc/sys is read-only there): the deploy writes them "
        "to /etc/sysctl.d and sets them on a VM",
    ),
    ("FILE-6310", ""): (CONTAINER, "separate /tmp, /home and /var partitions are made with the disk, not by a deploy"),
    ("FILE-6344", ""): (CONTAINER, "/proc's mount options are the container runtime's"),
    ("FILE-6374", ""): (CONTAINER, "/dev's mount options are the container runtime's"),
    ("USB-3000", ""): (CONTAINER, "USBGuard guards physical USB ports, which a container or cloud VM does not have"),
    ("ACCT-9628", ""): (CONTAINER, "auditd needs the kernel's audit subsystem, the host's in a container"),
    ("MACF-6290", ""): (
        CONTAINER,
        "AppArmor (the baseline installs its tools) loads its profiles into the kernel, the host's in a container",
    ),
    ("SSH-7408", "option Port "): (
        CHOICE,
        "sshd stays on port 22: another port hides nothing from a scan; the firewall, keys and TOTP protect it",
    ),
    ("SSH-7440", ""): (
        CHOICE,
        "who may log in is data (ssh_allow_users, ssh_allow_groups), empty by default: keys in data decide",
    ),
    ("DEB-0810", ""): (
        CHOICE,
        "apt-listbugs asks bugs.debian.org at every install and stops to ask a question: unattended runs would hang",
    ),
    ("DEB-0880", ""): (
        CHOICE,
        "fail2ban: logins need a key and a rate-limited TOTP code (MaxAuthTries 3), and its rules would fight "
        "the managed firewall",
    ),
    ("TOOL-5190", ""): (CHOICE, "OSSEC is not packaged by Debian; Monit alerts on every login"),
    ("MALW-3280", ""): (CHOICE, "no commercial anti-virus is packaged by Debian"),
    ("HRDN-7230", ""): (CHOICE, "rkhunter and chkrootkit guess by heuristics; file integrity is AIDE's job"),
    ("HRDN-7220", ""): (
        CHOICE,
        "needrestart (which the baseline installs) needs binutils' assembler; it is runnable by root only",
    ),
    ("DBS-1884", ""): (
        CHOICE,
        "Lynis 3.0.8's Redis checks predate ACLs: Redis's default user is off entirely (no requirepass)",
    ),
    ("DBS-1888", ""): (CHOICE, "the session store serves app servers: TLS on the private address, not localhost"),
    ("LOGG-2154", ""): (
        CHOICE,
        "the log server (the backup server) is where the fleet's hosts send their logs; it keeps its own",
    ),
}


@dataclass(frozen=True)
class Loss:
    test: str  # the test id
    title: str  # what the test checks
    lost: int
    of: int
    detail: str  # the log's last result before the score

    def explanation(self) -> tuple[str, str] | None:
        """(kind, reason) from EXPLAINED, or None when this loss is not explained."""
        for (test, detail), explained in EXPLAINED.items():
            if test == self.test and detail in self.detail:
                return explained
        return None


@dataclass(frozen=True)
class Audit:
    host: str
    index: int
    warnings: list[str]
    earned: int
    total: int
    losses: list[Loss]

    def unexplained(self) -> list[Loss]:
        return [loss for loss in self.losses if loss.explanation() is None]

    def index_without_container_tests(self) -> int:
        """The index with the items a container cannot earn left out (their earned points too),
        as Lynis would score the same deploy on a VM that earns them."""
        earned, total = self.earned, self.total
        for loss in self.losses:
            if (loss.explanation() or ("", ""))[0] == CONTAINER:
                earned -= loss.of - loss.lost
                total -= loss.of
        return earned * 100 // total


def parse(host: str, log: str, report: str) -> Audit:
    """An audit from Lynis's log and its report file."""
    test, title, detail = "", "", ""
    losses = []
    earned = total = 0
    for line in log.splitlines():
        if found := re.search(r"Performing test ID (\S+) \((.*)\)", line):
            test, title, detail = found.group(1), found.group(2), ""
        elif found := re.search(r"hardening points \((\d+) of (\d+)\)", line):
            points, of = int(found.group(1)), int(found.group(2))
            if points < of:
                losses.append(Loss(test, title, of - points, of, detail))
        elif " Result: " in line:
            detail = line.split(" Result: ", 1)[1]
        if found := re.search(r"Currently having (\d+) points \(out of (\d+)\)", line):
            earned, total = int(found.group(1)), int(found.group(2))
    values = [line.split("=", 1) for line in report.splitlines() if "=" in line]
    index = next(int(value) for key, value in values if key == "hardening_index")
    warnings = [value for key, value in values if key == "warning[]"]
    return Audit(host, index, warnings, earned, total, losses)


def package() -> Path:
    """Debian 12's lynis package, downloaded once into build/judges."""

    def fetch(path: Path) -> None:
        download = ["apt-get", "download", "lynis=3.0.8*"]
        if subprocess.run(download, cwd=CACHE, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(download, cwd=CACHE, check=True, capture_output=True)
        next(CACHE.glob("lynis_3.0.8*.deb")).rename(path)

    return cached("lynis.deb", fetch)


def audit(machine: Machine) -> Audit:
    """Install Lynis on ``machine`` (with what it needs, e2fsprogs on a bare Debian 13) and run
    ``lynis audit system --quick`` there."""
    install(machine, copy_to(machine, package()))
    # PKGS-7392 runs `apt-get update` (and scores nothing without Ubuntu's apt-check): on a
    # machine without a network it waits on timeouts (CI passed two minutes). The judge stays offline.
    machine.check(f"echo skip-test=PKGS-7392 > {CUSTOM_PROFILE}")
    # Under a minute here; the limit leaves room for a slower machine running four hosts at once.
    run = machine.exec("lynis audit system --quick --no-colors >/root/lynis.out 2>&1", timeout=600)
    assert run.returncode == 0, machine.exec("tail -30 /root/lynis.out").stdout
    log = machine.check(f"cat {LOG}")
    # Kept, one per role and release, for reading every finding.
    (CACHE / f"lynis-{machine.name.rsplit('-', 1)[0]}.log").write_text(log)
    return parse(machine.name, log, machine.check(f"cat {REPORT}"))


def table(audits: list[Audit]) -> str:
    """Markdown: each host's index, then every lost point with its kind and reason."""
    lines = [
        "| Host | Lynis index | Without container-only tests | Warnings |",
        "|---|---|---|---|",
        *(
            f"| {audit.host} | {audit.index} | {audit.index_without_container_tests()} | {len(audit.warnings)} |"
            for audit in audits
        ),
        "",
        "| Host | Test | Lost | What Lynis found | Why |",
        "|---|---|---|---|---|",
    ]
    for audit in audits:
        for loss in audit.losses:
            kind, reason = loss.explanation() or ("UNEXPLAINED", "")
            detail = loss.detail.replace("|", "\\|")[:90]
            lines.append(f"| {audit.host} | {loss.test} | {loss.lost} of {loss.of} | {detail} | {kind}: {reason} |")
    return "\n".join(lines)
