"""Who sends logs where, what it needs before a run starts, and the rsyslog files that say so."""

from __future__ import annotations

import pytest
from pyinfra.api import Inventory

from harness.checked import checked_hosts as validate_inventory
from harness.operator import make_key
from pyinfra_hardening import fleet_tls, remote_logging
from pyinfra_hardening.managed_files import render
from pyinfra_hardening.settings import SettingsError


@pytest.fixture
def inventory(tmp_path):
    """app1, db1 and backup1, each with a private address but where ``extra`` says otherwise."""
    admins = [{"name": "alice", "ssh_keys": [make_key(tmp_path / "alice", "alice@test")]}]

    def build(all_data=None, **extra) -> Inventory:
        addresses = {"app1": "10.0.0.11", "db1": "10.0.0.21", "backup1": "10.0.0.31"}
        hosts = [(name, {"private_ip": ip, **extra.get(name, {})}) for name, ip in addresses.items()]
        return Inventory(
            (hosts, {"admin_users": admins, "login_alerts": False, **(all_data or {})}),
            app_servers=(["app1"], {}),
            db_servers=(["db1"], {}),
            backup_servers=(["backup1"], {}),
        )

    return build


def test_every_host_but_the_backup_server_sends_it_its_logs(secret_store, inventory):
    hosts = validate_inventory(inventory())
    assert remote_logging.log_server(hosts["app1"].inventory) is hosts["backup1"]
    assert remote_logging.senders(hosts["app1"].inventory) == ("10.0.0.11", "10.0.0.21")
    assert [remote_logging.receiving_port(hosts[name]) for name in ("app1", "db1", "backup1")] == [0, 0, 6514]


def test_without_a_fleet_ca_every_host_is_told_how_to_make_one_or_turn_remote_logging_off(store_without_ca, inventory):
    with pytest.raises(SettingsError) as error:
        validate_inventory(inventory({"backups": False}))
    message = str(error.value)
    assert "host backup1: fleet_ca_keys = 'keys' has no CA that can sign" in message
    assert fleet_tls.INIT_FIX in message


def test_with_logs_kept_on_each_host_the_backup_server_needs_no_fleet_ca(secret_store, inventory):
    with pytest.raises(SettingsError, match="host backup1: fleet_ca_keys = 'elsewhere' has no CA"):
        validate_inventory(inventory(backup1={"fleet_ca_keys": "elsewhere"}))
    validate_inventory(inventory({"remote_logging": False}, backup1={"fleet_ca_keys": "elsewhere"}))


def test_a_sender_without_a_private_address_is_refused_before_the_run(secret_store, inventory):
    with pytest.raises(SettingsError) as error:
        validate_inventory(inventory(app1={"private_ip": None}, db1={"remote_logging": False}))
    assert "host app1: private_ip = None is not set, but remote logging (to backup1) needs it" in str(error.value)


def test_the_files_say_tls_1_3_with_the_fleet_ca_on_both_ends():
    common = {"key": "/k", "certificate": "/c", "ca": fleet_tls.TRUST_BUNDLE}
    sender = render(remote_logging.SENDER_CONFIG, address="10.0.0.31", port=6514, queue="/q", **common)
    receiver = render(remote_logging.RECEIVER_CONFIG, address="10.0.0.31", port=6514, folder="/r", **common)
    for text in (sender, receiver):
        assert 'StreamDriverMode="1"' in text or 'StreamDriver.Mode="1"' in text
        assert "x509/certvalid" in text and 'MinProtocol=TLSv1.3"' in text
        assert f'StreamDriver.CAFile="{fleet_tls.TRUST_BUNDLE}"' in text
    assert 'target="10.0.0.31" port="6514" protocol="tcp"' in sender
    # Files are named by where a connection came from, never by what a message claims.
    assert "%FROMHOST-IP%" in receiver and "%HOSTNAME%" not in receiver
