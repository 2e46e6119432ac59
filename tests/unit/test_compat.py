"""The pyinfra and paramiko internals compat.py relies on: each test fails if they change."""

from __future__ import annotations

import inspect
import socket
import subprocess
import sys
import types

import paramiko
import pyinfra.connectors.util as connector_util
from pyinfra.api import Config, Inventory, State
from pyinfra.api.arguments import pop_global_arguments
from pyinfra.context import ctx_host, ctx_state

from harness.operator import ADMIN_PASSWORD
from pyinfra_hardening import compat, ssh_login


def inventory(**host_data) -> Inventory:
    return Inventory(([("app1", host_data)], {"group_key": 1}), override_data={"cli_key": 2})


def test_pyinfra_reads_the_data_keys_we_treat_as_its_own():
    keys = compat.pyinfra_data_keys()
    assert {"ssh_user", "ssh_port", "ssh_key", "_sudo", "_sudo_password"} <= keys
    assert "admin_users" not in keys


def test_committed_layers_are_the_inventory_and_group_data_not_the_command_line():
    host = inventory(host_key=3).get_host("app1")
    merged = {key: value for layer in compat.committed_data_layers(host) for key, value in layer.items()}
    assert merged["host_key"] == 3 and merged["group_key"] == 1 and "cli_key" not in merged
    assert host.data.cli_key == 2  # pyinfra still applies it


def test_the_sudo_password_slot_is_the_one_pyinfra_hands_to_sudo(secret_store):
    source = inspect.getsource(connector_util)
    assert f'connector_data.get("{compat.SUDO_PASSWORD_SLOT}")' in source
    host = inventory(ssh_user="alice").get_host("app1")
    compat.sudo_with_stored_password(host)
    assert host.data._sudo is True
    assert host.connector_data[compat.SUDO_PASSWORD_SLOT] == ADMIN_PASSWORD


def test_root_needs_no_sudo(secret_store):
    host = inventory(ssh_user="root").get_host("app1")
    compat.sudo_with_stored_password(host)
    assert not host.data.get("_sudo") and compat.SUDO_PASSWORD_SLOT not in host.connector_data


def test_a_deploy_entered_before_validation_runs_its_operations_with_sudo(secret_store):
    """pyinfra takes a deploy's arguments from host data when it is entered."""
    hosts = inventory(ssh_user="alice")
    state = State(hosts, Config())
    host = hosts.get_host("app1")
    with ctx_state.use(state), ctx_host.use(host):
        entered, _ = pop_global_arguments(state, host, {})
        assert entered["_sudo"] is False
        with host.deploy("a role", kwargs=entered, data=None):
            compat.sudo_with_stored_password(host)
            inside, _ = pop_global_arguments(state, host, {})
    assert inside["_sudo"] is True


def test_executing_follows_pyinfras_state():
    state = State(inventory(), Config())
    assert compat.executing() is False
    with ctx_state.use(state):
        assert compat.executing() is False
        state.is_executing = True
        assert compat.executing() is True


def test_paramiko_answers_keyboard_interactive_through_the_method_we_wrap(secret_store):
    assert "auth_interactive_dumb(username)" in inspect.getsource(paramiko.SSHClient._auth)
    ssh_login.install()
    ssh_login.install()  # twice: wrapped once
    method = paramiko.Transport.__dict__["auth_interactive_dumb"]
    assert method.answers_from_store
    seen = {}

    def auth_interactive(self, username, handler, submethods=""):
        seen["answers"] = handler("", "", [("Password: ", False)])
        return []

    original = paramiko.Transport.auth_interactive
    paramiko.Transport.auth_interactive = auth_interactive
    try:
        transport = paramiko.Transport.__new__(paramiko.Transport)
        transport.getpeername = lambda: ("10.0.0.1", 22)  # only the label of the TOTP state uses it
        paramiko.Transport.auth_interactive_dumb(transport, "alice")
    finally:
        paramiko.Transport.auth_interactive = original
    assert seen["answers"] == [ADMIN_PASSWORD]


def test_an_inventory_loads_with_its_group_data_as_the_command_line_loads_it(tmp_path):
    """group_data in the working directory (a project's) counts, as in a run."""
    (tmp_path / "group_data").mkdir()
    (tmp_path / "group_data" / "backup_servers.py").write_text("ssh_port = 2222\n")
    (tmp_path / "inventories").mkdir()
    (tmp_path / "inventories" / "prod.py").write_text("backup_servers = [('backup1', {'ssh_hostname': '10.0.0.31'})]\n")
    # In a process of its own: pyinfra's command-line package patches the standard library (gevent).
    script = (
        "from pyinfra_hardening import compat; "
        "host = compat.load_inventory('inventories/prod.py').get_host('backup1'); "
        "print(host.data.ssh_hostname, host.data.ssh_port)"
    )
    loaded = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == ["10.0.0.31", "2222"]


def test_paramiko_lists_the_key_exchanges_it_offers():
    assert "curve25519-sha256@libssh.org" in compat.paramiko_key_exchanges()


def test_pyinfras_command_line_connects_through_the_name_we_wrap():
    import pyinfra_cli.cli as command_line

    assert "connect_all(state)" in inspect.getsource(command_line._main)


def test_a_projects_config_refuses_bad_data_before_connecting(tmp_path, secret_store):
    from pyinfra_hardening.scaffold import CONFIG, DEPLOY

    (tmp_path / "config.py").write_text(CONFIG)
    (tmp_path / "deploy.py").write_text(DEPLOY.format(role="app"))
    # Nothing listens there: a run that tried to connect would fail to, not refuse the port.
    (tmp_path / "inventory.py").write_text(
        "app_servers = [('app1', {'ssh_hostname': '127.0.0.1', 'ssh_port': '22'})]\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "inventory.py", "deploy.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "host app1: ssh_port = '22' must be a whole number from 1 to 65535" in run.stderr
    assert "Connected" not in run.stderr and "Could not connect" not in run.stderr


def test_the_current_host_is_the_host_itself_not_pyinfras_proxy():
    host = inventory().get_host("app1")
    assert compat.current_host() is None
    with ctx_host.use(host):
        assert compat.current_host() is host


def test_pyinfras_ssh_sockets_send_without_nagles_delay():
    """paramiko opens every client connection through Transport.start_client: wrapped, it turns
    TCP_NODELAY on before the key exchange (a no-op re-run took 8 s with Nagle, 5.8 s without)."""
    assert "start_client" in paramiko.Transport.__dict__
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()) as client:
        transport = types.SimpleNamespace(sock=client)
        assert compat._without_nagle(lambda self: "started")(transport) == "started"
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
