"""Every pyinfra and paramiko internal this project relies on, in one place.

pyinfra 3.10 has no public API for these; each has a test in tests/unit/test_compat.py that
fails if pyinfra (or paramiko) changes underneath, so an upgrade breaks loudly here rather
than quietly in a run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import paramiko
from pyinfra import context
from pyinfra.api import Inventory, State
from pyinfra.api.arguments import all_argument_meta
from pyinfra.api.exceptions import ConnectorDataTypeError
from pyinfra.connectors import base as connectors_base
from pyinfra.connectors.ssh import SSHConnector

from . import secret_store

if TYPE_CHECKING:
    from pyinfra.api.host import Host

# The connector's slot for a sudo password typed at pyinfra's prompt; sudo gets it through
# pyinfra's askpass helper, never on a command line (pyinfra/connectors/util.py).
SUDO_PASSWORD_SLOT = "prompted_sudo_password"


def pyinfra_data_keys() -> set[str]:
    """Host-data keys pyinfra itself reads (``ssh_user``, ``_sudo``, ...): never the user's typos."""
    return set(SSHConnector.data_meta) | set(all_argument_meta)


def committed_data_layers(host: Host) -> list[dict]:
    """Host data that came from files (inventory and group_data), not from the command line."""
    inventory = host.inventory
    return [inventory.get_host_data(host.name), inventory.get_groups_data(host.groups), inventory.get_data()]


def group_data_files(host: Host) -> list[Path]:
    """The group_data files pyinfra's command line reads for ``host`` (in the working directory
    of the run: ``group_data/all.py`` and one file per group)."""
    state = getattr(host.inventory, "state", None)
    folder = Path(getattr(state, "cwd", None) or os.getcwd()) / "group_data"
    return [folder / f"{group}.py" for group in ("all", *host.groups) if (folder / f"{group}.py").is_file()]


def before_connecting(prepare: Callable[[State], None]) -> None:
    """Make pyinfra's command line call ``prepare(state)`` once the inventory is loaded and
    before it connects to any host (from config.py, which it loads first): to limit the hosts
    of the run, or refuse bad data in the project's words rather than meet it as a failed
    connection. What ``prepare`` raises ends the run."""
    import pyinfra_cli.cli as command_line  # the command line's package, loaded when needed

    connect = command_line.connect_all
    if getattr(connect, "prepared_first", False):
        return

    def connect_all(state: State) -> None:
        prepare(state)
        connect(state)

    connect_all.prepared_first = True  # type: ignore[attr-defined]
    command_line.connect_all = connect_all


def command_line_operations() -> tuple[str, ...]:
    """The deploy files (or module paths) pyinfra's command line was given; empty outside it."""
    import click  # pyinfra's command line is a click command; its parameters are public

    context = click.get_current_context(silent=True)
    return tuple(context.params.get("operations") or ()) if context is not None else ()


def hosts_in_limit(state: State) -> list[Host]:
    """The hosts a run acts on: all, or those ``--limit`` (and ``limit_to``) leave."""
    return [host for host in state.inventory if state.is_host_in_limit(host)]


def limit_to(state: State, hosts: list[Host]) -> None:
    """Narrow the run to ``hosts`` (within any ``--limit``), as if given with ``--limit``."""
    state.limit_hosts = [host for host in hosts_in_limit(state) if host in hosts]


def check_connector_data(check: Callable[[Host], None]) -> None:
    """pyinfra checks the types of its own connection keys (``ssh_port`` an int...) as it sets a
    host up, in words that name neither the host nor a fix; on such a mismatch ``check`` gets
    the host first, to refuse it in the project's words (anything else: pyinfra's error)."""
    original = connectors_base.host_to_connector_data
    if getattr(original, "checks_first", False):
        return

    def host_to_connector_data(connector_data: Any, meta: Any, host_data: Any) -> Any:
        try:
            return original(connector_data, meta, host_data)
        except ConnectorDataTypeError:
            check(host_data.host)
            raise

    host_to_connector_data.checks_first = True  # type: ignore[attr-defined]
    connectors_base.host_to_connector_data = host_to_connector_data  # type: ignore[assignment]


def load_inventory(path: str) -> Inventory:
    """An inventory file with the group_data beside it and in the working directory, as pyinfra's
    command line loads it (outside a run: its loader needs a state to record what it executes)."""
    from pyinfra_cli.inventory import make_inventory  # the command line's package, loaded when needed

    with context.ctx_state.use(State()):
        return make_inventory(path, cwd=os.getcwd())


def current_host() -> Host | None:
    """The host whose deploy pyinfra is loading (or running) now, if any."""
    return context.ctx_host.get() if context.ctx_host.isset() else None  # the Host, not pyinfra's proxy of it


def connect_user(host: Host) -> str:
    return host.data.get("ssh_user") or "root"


def sudo_with_stored_password(host: Host) -> None:
    """A run connected as someone other than root runs every operation through sudo; when the
    store holds that user's password (an admin's), pyinfra is given it as if typed at its prompt."""
    user = connect_user(host)
    if user == "root":
        return
    host.data._sudo = True
    # A @deploy took its arguments from host data when it was entered, which may have been
    # before this ran (a role validates inside its deploy): its operations need sudo too.
    if host.current_deploy_kwargs is not None:
        host.current_deploy_kwargs["_sudo"] = True
    password = secret_store.lookup(secret_store.admin_password_name(user))
    if password is not None:
        host.connector_data[SUDO_PASSWORD_SLOT] = password.reveal()


def paramiko_key_exchanges() -> set[str]:
    """The key exchanges this machine's paramiko offers (pyinfra connects with it)."""
    return set(paramiko.Transport._preferred_kex)  # type: ignore[attr-defined]  # not in the stubs


def executing() -> bool:
    """Whether pyinfra is executing operations now, rather than planning them or detecting
    changes (which ``--dry`` and the confirmation prompt do): side effects on the operator's
    machine, such as generating a secret into the store, happen only then."""
    return context.ctx_state.isset() and bool(context.state.is_executing)


class _FactOutput:
    """How many facts that read secrets are being gathered now, across hosts (each host is a
    greenlet, and pyinfra's flag is one for the whole run), and what the flag was before."""

    gathering = 0
    printed = False


@contextmanager
def fact_output_unprinted() -> Iterator[None]:
    """pyinfra's ``-vvv`` prints what every fact command outputs; facts that read secrets
    (pyinfra's Users fact holds every account's password hash) are gathered inside this, which
    turns that printing off until the last such fact on any host is done."""
    if not context.ctx_state.isset():
        yield
        return
    state = context.state
    if _FactOutput.gathering == 0:
        _FactOutput.printed, state.print_fact_output = state.print_fact_output, False
    _FactOutput.gathering += 1
    try:
        yield
    finally:
        _FactOutput.gathering -= 1
        if _FactOutput.gathering == 0:
            state.print_fact_output = _FactOutput.printed


def _answering(original: Callable, answers_for: Callable) -> Callable:
    def auth_interactive_dumb(self: Any, username: str, handler: Any = None, submethods: str = "") -> Any:
        return original(self, username, handler or answers_for(self, username), submethods)

    auth_interactive_dumb.answers_from_store = True  # type: ignore[attr-defined]
    return auth_interactive_dumb


def answer_keyboard_interactive(answers_for: Callable) -> None:
    """Have paramiko answer keyboard-interactive prompts with ``answers_for(transport, user)``.

    pyinfra's SSH connector has no hook for them: paramiko falls back to
    ``auth_interactive_dumb``, which reads the terminal (and kills a run with none)."""
    for transport_class in (paramiko.Transport, paramiko.transport.ServiceRequestingTransport):
        method = transport_class.__dict__.get("auth_interactive_dumb")
        if method is not None and not getattr(method, "answers_from_store", False):
            transport_class.auth_interactive_dumb = _answering(method, answers_for)  # type: ignore[method-assign]
