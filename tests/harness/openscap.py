"""OpenSCAP, the second judge: the SCAP Security Guide's ANSSI BP-028 profiles for Debian 12,
evaluated by ``oscap`` inside a hardened host, with every rule's result read from its XCCDF
results file.

The content comes from Debian 13's ``ssg-debian`` 0.1.76, the first to ship Debian 12 content
(``ssg-debian12-ds.xml``; Debian 12's own 0.1.65 has none). It has no Debian 13 content, and its
rules apply only where the platform is Debian 12, so the judge audits Debian 12 hosts.

``oscap`` itself comes from the host's release (``openscap-scanner``), by ``judge_packages``.
"""

from __future__ import annotations

import hashlib
import subprocess
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .containers import Machine
from .judge_packages import CACHE, cached, copy_to, download

CONTENT_PACKAGE = "http://deb.debian.org/debian/pool/main/s/scap-security-guide/ssg-debian_0.1.76-1_all.deb"
CONTENT_SHA256 = "f6880719015c16e8e221bc2503c0e5a9f83d6a09fc6f9292d3522e46bf4fc9d7"
DATASTREAM = "usr/share/xml/scap/ssg/content/ssg-debian12-ds.xml"
RELEASES = ("debian12",)
RULE = "xccdf_org.ssgproject.content_rule_"
PROFILE = "xccdf_org.ssgproject.content_profile_anssi_bp28_"
XCCDF = "{http://checklists.nist.gov/xccdf/1.2}"
# The results a share is taken of: notapplicable (e.g. rules for a machine, not a container),
# notchecked (no automated check) and notselected rules are left out.
DECIDED = ("pass", "fail", "error")

# Rules this project fails on purpose, each with why.
EXPLAINED: dict[str, str] = {
    "sudo_add_noexec": "noexec stops what sudo runs from starting other programs: apt's scripts and pyinfra's shell",
    "sudo_add_requiretty": "pyinfra runs sudo without a terminal",
    "sudo_add_umask": (
        "umask 0077 under sudo would leave files that apt and pyinfra create unreadable to the services "
        "that read them as their own users"
    ),
    "sudoers_explicit_command_args": "admins administer: the admin group may run any command (guide 3.7)",
    "sudoers_no_root_target": "admins administer: the admin group may run commands as root (guide 3.7)",
}


@dataclass(frozen=True)
class Evaluation:
    host: str
    profile: str
    results: dict[str, str]  # rule id (without the ssgproject prefix) -> result

    def failed(self) -> list[str]:
        return sorted(rule for rule, result in self.results.items() if result in ("fail", "error"))

    def passed_share(self) -> float:
        counts = Counter(self.results.values())
        decided = sum(counts[result] for result in DECIDED)
        return counts["pass"] / decided if decided else 0.0

    def counts(self) -> Counter:
        return Counter(self.results.values())


def datastream() -> Path:
    """ssg-debian12-ds.xml from Debian 13's ssg-debian package, checked against its known hash."""

    def fetch(path: Path) -> None:
        package = download(CONTENT_PACKAGE)
        assert hashlib.sha256(package).hexdigest() == CONTENT_SHA256, f"{CONTENT_PACKAGE} is not the known package"
        deb = CACHE / "ssg-debian.deb"
        deb.write_bytes(package)
        unpacked = CACHE / "ssg-debian"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        (unpacked / DATASTREAM).rename(path)

    return cached("ssg-debian12-ds.xml", fetch)


def evaluate(machine: Machine, level: str) -> Evaluation:
    """``oscap xccdf eval`` of the ANSSI BP-028 profile ``level`` (minimal, intermediary, ...)."""
    content = copy_to(machine, datastream())
    results = f"/root/oscap-{level}.xml"
    run = machine.exec(f"oscap xccdf eval --profile {PROFILE}{level} --results {results} {content} >/dev/null")
    # oscap exits 2 when a rule failed; anything else than 0 or 2 is the scan's own failure.
    assert run.returncode in (0, 2), run.stderr[-3000:]
    return parse(machine.name, level, machine.read_bytes(results))


def parse(host: str, level: str, xml: bytes) -> Evaluation:
    """Every rule's result from an XCCDF 1.2 results file."""
    root = ElementTree.fromstring(xml)
    results = {
        element.get("idref", "").removeprefix(RULE): element.findtext(f"{XCCDF}result", "")
        for element in root.iter(f"{XCCDF}rule-result")
    }
    return Evaluation(host, level, results)


def table(evaluations: list[Evaluation]) -> str:
    """Markdown: each host's counts per profile, then every failed rule with its reason."""
    lines = [
        "| Host | Profile | Passed | Failed | Share passed |",
        "|---|---|---|---|---|",
        *(
            f"| {e.host} | {e.profile} | {e.counts()['pass']} | {e.counts()['fail'] + e.counts()['error']} "
            f"| {e.passed_share():.0%} |"
            for e in evaluations
        ),
        "",
        "| Host | Profile | Failed rule | Why |",
        "|---|---|---|---|",
    ]
    for evaluation in evaluations:
        for rule in evaluation.failed():
            why = EXPLAINED.get(rule, "UNEXPLAINED")
            lines.append(f"| {evaluation.host} | {evaluation.profile} | {rule} | {why} |")
    return "\n".join(lines)
