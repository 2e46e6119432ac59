"""Who may reach what, computed from the inventory, and the rule files that say so."""

from __future__ import annotations

import re

import pytest
from pyinfra.api import Inventory

from harness.checked import checked_hosts as validate_inventory
from harness.operator import make_key
from pyinfra_hardening import firewall
from pyinfra_hardening.settings import SettingsError

pytestmark = pytest.mark.usefixtures("secret_store")

APP_IPS = ("10.0.0.11", "10.0.0.12")
DB_IP = "10.0.0.21"
OFFICE = "192.168.50.0/24"


@pytest.fixture
def inventory(tmp_path):
    """app1 and app2, db1 and backup1, one private address each, and the session stores ``cache``
    names (db1, or hosts of their own from 10.0.0.41 on); ``extra`` adds host data."""
    admins = [{"name": "alice", "ssh_keys": [make_key(tmp_path / "alice", "alice@test")]}]

    def build(all_data=None, app_ips=APP_IPS, cache=(), **extra) -> Inventory:
        addresses = {f"app{number}": ip for number, ip in enumerate(app_ips, 1)}
        addresses.update(db1=DB_IP, backup1="10.0.0.31")
        addresses.update({name: f"10.0.0.{41 + index}" for index, name in enumerate(cache) if name not in addresses})
        hosts = [(name, {"private_ip": ip, **extra.get(name, {})}) for name, ip in addresses.items()]
        return Inventory(
            (hosts, {"admin_users": admins, "login_alerts": False, **(all_data or {})}),
            app_servers=([name for name in addresses if name.startswith("app")], {}),
            db_servers=(["db1"], {}),
            backup_servers=(["backup1"], {}),
            cache_servers=(list(cache), {}),
        )

    return build


def rules(host, family: int) -> str:
    plan = firewall.plan_for(host)
    return firewall.ruleset(plan, family, firewall.openings(plan, [22]))


def accepted(rule_text: str) -> list[tuple[str | None, int]]:
    """(source, port) of every TCP accept rule."""
    found = re.findall(r"^-A TCP (?:-s (\S+) )?-p tcp --dport (\d+) -j ACCEPT$", rule_text, re.M)
    return [(source or None, int(port)) for source, port in found]


def test_a_session_store_admits_redis_and_ssh_from_the_app_servers_and_ssh_from_the_operators(inventory):
    db = validate_inventory(inventory({"admin_cidrs": [OFFICE]}, cache=["db1"]))["db1"]
    app_servers = [("10.0.0.11/32", port) for port in (22, 3306, 6379)] + [
        ("10.0.0.12/32", port) for port in (22, 3306, 6379)
    ]
    assert sorted(accepted(rules(db, 4))) == sorted([(OFFICE, 22), *app_servers])
    assert 6379 not in [port for _, port in accepted(rules(validate_inventory(inventory())["db1"], 4))]


def test_the_database_admits_only_the_app_servers_and_the_operators(inventory):
    db = validate_inventory(inventory({"admin_cidrs": [OFFICE]}))["db1"]
    assert sorted(accepted(rules(db, 4))) == sorted(
        [
            (OFFICE, 22),
            ("10.0.0.11/32", 22),
            ("10.0.0.12/32", 22),
            ("10.0.0.11/32", 3306),
            ("10.0.0.12/32", 3306),
        ]
    )
    # Every admitted address is IPv4, so over IPv6 nothing at all is open.
    assert accepted(rules(db, 6)) == []
    assert "*nat" not in rules(db, 4), "the nat table of a database server is left to others"


def test_the_app_servers_in_the_inventory_are_the_ones_admitted(inventory):
    before = validate_inventory(inventory())["db1"]
    after = validate_inventory(inventory(app_ips=(APP_IPS[0], "10.0.0.13")))["db1"]
    assert ("10.0.0.12/32", 3306) in accepted(rules(before, 4))
    assert ("10.0.0.12/32", 3306) not in accepted(rules(after, 4))
    assert ("10.0.0.13/32", 3306) in accepted(rules(after, 4))


def ssh_rules(rule_text: str) -> list[tuple[str | None, int]]:
    return [rule for rule in accepted(rule_text) if rule[1] == 22]


def test_the_backup_server_admits_ssh_from_the_database_servers_and_session_stores_only(inventory):
    backup = validate_inventory(inventory())["backup1"]
    assert ssh_rules(rules(backup, 4)) == [("10.0.0.21/32", 22)]
    backup = validate_inventory(inventory(cache=["db1", "cache1"]))["backup1"]
    assert ssh_rules(rules(backup, 4)) == [("10.0.0.21/32", 22), ("10.0.0.42/32", 22)]


def test_the_log_server_takes_syslog_from_the_hosts_that_send_it_and_nobody_else(inventory):
    backup = validate_inventory(inventory(cache=["cache1"]))["backup1"]
    senders = ["10.0.0.11/32", "10.0.0.12/32", "10.0.0.21/32", "10.0.0.41/32"]
    assert [source for source, port in accepted(rules(backup, 4)) if port == 6514] == senders
    # A host that keeps its logs is not let in; nor anyone when the server takes no logs.
    hosts = validate_inventory(inventory(app2={"remote_logging": False}, backup1={"remote_logging_port": 10514}))
    assert [source for source, port in accepted(rules(hosts["backup1"], 4)) if port == 10514] == [
        "10.0.0.11/32",
        "10.0.0.21/32",
    ]
    backup = validate_inventory(inventory(backup1={"remote_logging": False}))["backup1"]
    assert accepted(rules(backup, 4)) == [("10.0.0.21/32", 22)]
    # The senders open nothing for it.
    app = validate_inventory(inventory())["app1"]
    assert accepted(rules(app, 4)) == [(None, 22), (None, 80), (None, 443)]


def test_behind_the_tls_front_only_ssh_80_and_443_are_public_and_nothing_is_redirected(inventory):
    app = validate_inventory(inventory())["app1"]
    for family in (4, 6):
        assert accepted(rules(app, family)) == [(None, 22), (None, 80), (None, 443)]
        assert "REDIRECT" not in rules(app, family)


def test_without_the_front_the_app_server_serves_its_ports_and_redirects_the_standard_ones(inventory):
    app = validate_inventory(inventory({"tls_front": False}))["app1"]
    for family in (4, 6):
        assert accepted(rules(app, family)) == [(None, 22), (None, 80), (None, 443), (None, 3000), (None, 3003)]
        assert re.findall(r"--dport (\d+) -j REDIRECT --to-ports (\d+)", rules(app, family)) == [
            ("80", "3000"),
            ("443", "3003"),
        ]


def test_admin_networks_narrow_ssh_on_the_app_server_per_family(inventory):
    app = validate_inventory(inventory({"admin_cidrs": [OFFICE, "fd00:1::/64"]}))["app1"]
    assert [rule for rule in accepted(rules(app, 4)) if rule[1] == 22] == [(OFFICE, 22)]
    assert [rule for rule in accepted(rules(app, 6)) if rule[1] == 22] == [("fd00:1::/64", 22)]


def test_ipv6_keeps_neighbour_discovery_before_invalid_packets_are_dropped(inventory):
    text = rules(validate_inventory(inventory())["db1"], 6)
    neighbour_solicitation = text.index("--icmpv6-type 135 -m hl --hl-eq 255 -j ACCEPT")
    assert neighbour_solicitation < text.index("--ctstate INVALID -j DROP")
    assert ":INPUT DROP" in text and ":FORWARD DROP" in text


def test_a_host_in_two_roles_gets_the_union(inventory):
    both = Inventory(
        ([("box", {"private_ip": "10.0.0.5"})], inventory().get_data()),
        app_servers=(["box"], {}),
        db_servers=(["box"], {}),
    )
    box = validate_inventory(both)["box"]
    assert (None, 22) in accepted(rules(box, 4)), "an app server is reachable over SSH"
    assert ("10.0.0.5/32", 3306) in accepted(rules(box, 4))


def test_the_operator_is_checked_against_the_ssh_sources():
    ssh = firewall.Opening(22, ("10.0.0.11/32", OFFICE), "SSH")
    assert ssh.admits("192.168.50.7") and ssh.admits("10.0.0.11")
    assert not ssh.admits("10.0.0.12") and not ssh.admits("fd00::1")
    assert firewall.Opening(22, None, "SSH").admits("203.0.113.9")


def test_the_fingerprinted_tables_are_the_ones_the_file_replaces(inventory):
    settings = validate_inventory(inventory())
    assert firewall.tables_of(rules(settings["app1"], 4)) == ("filter", "nat")
    assert firewall.tables_of(rules(settings["db1"], 4)) == ("filter",)


BAD_FIREWALL_DATA = [
    # (host data of app1, key named, words of the explanation)
    ({"tls_front": False, "app_tcp_ports": [80, 443]}, "app_port_redirects", "would be dropped"),
    ({"app_tcp_ports": [80, 80, 3000, 3003]}, "app_tcp_ports", "twice"),
    ({"app_tcp_ports": [0]}, "app_tcp_ports", "from 1 to 65535"),
    ({"app_tcp_ports": "80,443"}, "app_tcp_ports", "must be a list"),
    ({"app_port_redirects": [(80, 3000)]}, "app_port_redirects", "must map"),
    ({"app_port_redirects": {80: 70000}}, "app_port_redirects", "at [80] that must be a whole number from 1 to 65535"),
    ({"database_port": "3306"}, "database_port", "whole number"),
    ({"firewall_rollback_seconds": 5}, "firewall_rollback_seconds", "from 30 to 600"),
    ({"private_ip": None}, "private_ip", "admits app_servers only by their private address"),
]


@pytest.mark.parametrize("app1_data, key, words", BAD_FIREWALL_DATA)
def test_bad_firewall_data_is_refused_with_the_fix(inventory, app1_data, key, words):
    with pytest.raises(SettingsError) as error:
        validate_inventory(inventory(app1=app1_data))
    message = str(error.value)
    assert f"host app1: {key} = " in message and words in message
    assert "fix: " in message


def test_without_a_firewall_only_the_database_asks_an_app_server_for_its_private_address(inventory):
    with pytest.raises(SettingsError) as error:
        validate_inventory(inventory({"firewall": False}, app1={"private_ip": None}))
    message = str(error.value)
    assert "host app1: private_ip = None is not set, but the database admits the application by it" in message
    assert "firewall admits" not in message
