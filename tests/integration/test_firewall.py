"""The firewall, proven with real traffic between containers on one Docker network (guide 3.11).

Listeners answer ``<hostname>:<port>``, so a reply also says which port really served it; on the
database port MariaDB itself answers (its greeting names it).
"""

from __future__ import annotations

import pytest

from harness.operator import ADMIN, DEPLOYS
from pyinfra_hardening import firewall

DATABASE_PORT = 3306
UNLISTED_PORT = 8080
APP_PORTS = (3000, 3003)
# The port the TLS front proxies to, where a real HTTP server stands in for the application (a
# bare line in answer would reach clients as an HTTP/0.9 reply, without the front's headers).
APP_PORT = 3000


@pytest.fixture(scope="module")
def listening(deployment):
    """Listeners on the application's ports, the database port, and a port no rule opens."""
    machines = deployment.machines
    machines["app"].serve_http(APP_PORT)
    for port in (*APP_PORTS, UNLISTED_PORT):
        if port != APP_PORT:
            machines["app"].serve(port)
    machines["db"].serve(UNLISTED_PORT)
    # MariaDB listens on the private IPv4 address only; this stands in for it on IPv6.
    machines["db"].serve(DATABASE_PORT, ipv6_only=True)
    # Each listener answers from inside its own host, where no firewall rule applies.
    for role, port in (("app", UNLISTED_PORT), ("db", UNLISTED_PORT)):
        assert machines[role].reach("127.0.0.1", port) == f"{role}:{port}"
    assert machines["db"].reach("::1", DATABASE_PORT) == f"db:{DATABASE_PORT}"
    assert mariadb_greets(machines["db"].reach(machines["db"].private_ip, DATABASE_PORT))
    return machines


def mariadb_greets(answer: str | None) -> bool:
    return answer is not None and "MariaDB" in answer


def test_the_database_port_answers_the_app_server_and_nobody_else(deployment, listening):
    db = listening["db"]
    assert mariadb_greets(listening["app"].reach(db.private_ip, DATABASE_PORT))
    assert deployment.outsider.reach(db.private_ip, DATABASE_PORT) is None
    assert listening["backup"].reach(db.private_ip, DATABASE_PORT) is None


def test_ssh_to_the_database_server_comes_only_from_the_app_server(deployment, listening):
    db = listening["db"]
    assert listening["app"].reach(db.private_ip, 22).startswith("SSH-2.0-")
    assert deployment.outsider.reach(db.private_ip, 22) is None


def test_ssh_to_the_backup_server_comes_only_from_the_database_server(deployment, listening):
    backup = listening["backup"]
    assert listening["db"].reach(backup.private_ip, 22).startswith("SSH-2.0-")
    assert listening["app"].reach(backup.private_ip, 22) is None
    assert deployment.outsider.reach(backup.private_ip, 22) is None


def test_behind_the_front_the_web_ports_are_nginxs_and_the_applications_own_are_closed(deployment, listening):
    app = listening["app"]
    # Both listen on every address: from inside the host they answer.
    assert app.reach("127.0.0.1", 3003) == "app:3003"
    assert app.http_get("::1", APP_PORT) is not None
    for address in (app.private_ip, app.private_ipv6):
        assert deployment.outsider.reach(address, 3003) is None
        assert deployment.outsider.http_get(address, APP_PORT) is None
    assert front_answers(deployment.outsider, app.private_ip)


def front_answers(client, address: str) -> bool:
    """nginx's redirect to https, not the application's own answer, comes back from port 80."""
    answer = client.http_get(address, 80)
    return answer is not None and answer[0] == 301


def test_admin_cidrs_narrow_ssh_on_the_app_server_to_the_operators(deployment, listening):
    # The test inventory sets admin_cidrs to the operator's address (Docker's gateway).
    assert deployment.outsider.reach(listening["app"].private_ip, 22) is None


def test_a_port_no_rule_opens_is_dropped(deployment, listening):
    assert deployment.outsider.reach(listening["app"].private_ip, UNLISTED_PORT) is None
    assert listening["app"].reach(listening["db"].private_ip, UNLISTED_PORT) is None


def test_ipv6_follows_the_same_policy(deployment, listening):
    app, db = listening["app"], listening["db"]
    # Open ports answer over IPv6 too, so the closed ones below are closed by the rules.
    assert front_answers(deployment.outsider, app.private_ipv6)
    assert deployment.outsider.reach(app.private_ipv6, UNLISTED_PORT) is None
    # The app server is admitted by its IPv4 address only: over IPv6 the database stays shut.
    assert app.reach(db.private_ipv6, DATABASE_PORT) is None
    assert deployment.outsider.reach(db.private_ipv6, 22) is None


def test_the_rules_come_back_when_netfilter_persistent_restarts(deployment, listening):
    app = listening["app"]
    applied = app.check("cat /var/lib/pyinfra-hardening/firewall/applied.v4")
    app.check("iptables -P INPUT ACCEPT && iptables -F && iptables -X && iptables -t nat -F")
    assert deployment.outsider.reach(app.private_ip, UNLISTED_PORT) == f"app:{UNLISTED_PORT}"

    app.check("systemctl restart netfilter-persistent")

    assert deployment.outsider.reach(app.private_ip, UNLISTED_PORT) is None
    assert deployment.outsider.http_get(app.private_ip, APP_PORT) is None
    assert front_answers(deployment.outsider, app.private_ip)
    live = app.check(f"{firewall.live_rules(4, ('filter', 'nat'))} | sha256sum | cut -c1-64")
    assert live == applied, "after a reboot's reload the live rules are exactly the applied ones"


def test_rules_flushed_by_hand_are_applied_again_by_the_next_run(deployment, operator, listening):
    app = listening["app"]
    app.check("ip6tables -P INPUT ACCEPT && ip6tables -F")
    assert deployment.outsider.reach(app.private_ipv6, UNLISTED_PORT) == f"app:{UNLISTED_PORT}"

    rerun = operator.pyinfra(deployment.admin_inventory, DEPLOYS["app"], args=("--limit", app.name))

    assert rerun.returncode == 0, rerun.output
    assert "Firewall: test the rules, arm the rollback timer, go live" in " ".join(rerun.changed[app.name])
    assert deployment.outsider.reach(app.private_ipv6, UNLISTED_PORT) is None


def test_an_app_server_added_to_the_inventory_is_admitted_after_a_rerun(deployment, operator, listening):
    db, newcomer = listening["db"], deployment.outsider
    assert newcomer.reach(db.private_ip, DATABASE_PORT) is None
    grown = operator.inventory(
        deployment.machines, user=ADMIN, name=f"grown-{deployment.release}", extra_app_servers=(newcomer,)
    )

    added = operator.pyinfra(grown, DEPLOYS["db"], args=("--limit", db.name))

    assert added.returncode == 0, added.output
    assert mariadb_greets(newcomer.reach(db.private_ip, DATABASE_PORT))
    assert newcomer.reach(db.private_ip, 22).startswith("SSH-2.0-")
    # MariaDB's account for the application follows the inventory too.
    newcomer_tls = operator.client_certificate(newcomer)
    assert operator.app_query(newcomer, db, "SELECT 'in'", run_as="root", tls=newcomer_tls).stdout.strip() == "in"

    removed = operator.pyinfra(deployment.admin_inventory, DEPLOYS["db"], args=("--limit", db.name))

    assert removed.returncode == 0, removed.output
    assert newcomer.reach(db.private_ip, DATABASE_PORT) is None
    assert mariadb_greets(listening["app"].reach(db.private_ip, DATABASE_PORT))
    # Let it through the firewall for a moment: MariaDB itself must turn it away now.
    db.check(f"iptables -I INPUT -s {newcomer.private_ip} -p tcp --dport {DATABASE_PORT} -j ACCEPT")
    try:
        refused = operator.app_query(newcomer, db, "SELECT 'in'", run_as="root", tls=newcomer_tls)
    finally:
        db.check(f"iptables -D INPUT -s {newcomer.private_ip} -p tcp --dport {DATABASE_PORT} -j ACCEPT")
    assert refused.returncode != 0 and "not allowed to connect" in refused.stderr
