"""testssl.sh 3.2.1 (Debian 13's), which grades a server as SSL Labs does, against the app
server's TLS front as a fresh Debian 13 VM gets it from the defaults (the fleet CA's
certificate, trusted here through ``--add-ca``). Slow (a full scan): ``make judges``."""

from __future__ import annotations

import json

import pytest

from pyinfra_hardening import fleet_ca

REPORT = "/root/testssl.json"


@pytest.fixture(scope="module")
def findings(hardened_app) -> list[dict]:
    """testssl.sh's JSON findings for the front of the hardened app server."""
    app = hardened_app.app
    judge = hardened_app.fleet.start("judge", hardened_app.operator.root_public_key)
    judge.install("testssl.sh")
    # An application behind the front that answers 200 and sets no headers of its own.
    app.serve_http(3000)
    judge.exec("cat > /root/fleet-ca.pem", stdin=fleet_ca.trust_bundle(hardened_app.operator.ca_keys))
    # A check testssl could not finish ("connect problem") says nothing about the front; the
    # scan is repeated until every check has a verdict, twice at most.
    for _attempt in range(3):
        scan = judge.exec(
            f"rm -f {REPORT}; testssl --quiet --color 0 --warnings off --add-ca /root/fleet-ca.pem "
            f"--jsonfile {REPORT} https://{app.private_ip}/"
        )
        report = judge.exec(f"cat {REPORT}").stdout
        assert report, scan.stdout[-3000:] + scan.stderr[-2000:]
        entries = json.loads(report)
        if not inconclusive(entries):
            break
    return entries


def inconclusive(findings: list[dict]) -> list[str]:
    """The checks testssl could not finish for want of a connection."""
    return [entry["id"] for entry in findings if "connect problem" in entry.get("finding", "")]


def finding(findings: list[dict], id: str) -> str | None:
    return next((entry["finding"] for entry in findings if entry["id"] == id), None)


def test_testssl_grades_the_front_a_plus_with_no_cap_or_warning(findings):
    caps = [f"{entry['id']}: {entry['finding']}" for entry in findings if entry["id"].startswith("grade_cap")]
    assert (finding(findings, "overall_grade"), caps) == ("A+", [])


# What testssl reports that is not the front's doing, each for its reason.
EXPLAINED = {
    # About testssl's own OpenSSL, the client side.
    "engine_problem",
    # The fleet CA publishes no CRL or OCSP responder: its leaves live 90 days and are renewed
    # by runs (as Let's Encrypt, which ended OCSP, relies on short lives).
    "cert_revocation",
}


def test_testssl_finds_nothing_it_rates_above_low(findings):
    serious = [
        f"{entry['id']}: {entry['finding']}"
        for entry in findings
        if entry.get("severity") in ("MEDIUM", "HIGH", "CRITICAL", "WARN") and entry["id"] not in EXPLAINED
    ]
    assert not serious, "\n".join(serious)
