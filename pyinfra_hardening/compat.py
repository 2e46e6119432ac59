"""Every pyinfra and paramiko internal this project relies on, in one place.

pyinfra 3.10 has no public API for these; each has a test in tests/unit/test_compat.py that
fails if pyinfra (or paramiko) changes underneath, so an upgrade breaks loudly here rather
than quietly in a run.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import secrets
import shlex
import socket
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click
import paramiko
from pyinfra import context
from pyinfra.api import FactBase, Inventory, ShortFactBase, State, StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, all_argument_meta, pop_global_arguments
from pyinfra.api.exceptions import ConnectorDataTypeError, FactProcessError
from pyinfra.api.host import Host
from pyinfra.api.operation import OperationMeta
from pyinfra.connectors import base as connectors_base
from pyinfra.connectors.ssh import SSHConnector

from . import secret_store

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


def operations_so_far() -> list[OperationMeta]:
    """What pyinfra has planned for the current host so far in this run, to gate an operation
    on any of them changing (``any_changed``)."""
    current = current_host()
    assert current is not None  # called from a deploy, which pyinfra loads for one host at a time
    return [data.operation_meta for data in context.state.ops[current].values()]


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


@dataclass
class _Read:
    """One fact read, planned: its memo key, the fact, its command and how that runs."""

    key: tuple
    fact: FactBase
    command: Any
    run_as: dict[str, Any]
    requires: str | None  # a program the command needs (pyinfra's requires_command)
    printed: bool  # whether -vvv may print its output (False: it holds secrets)


class _FactMemo:
    """What each host's facts said since the last command that could change it, and the reads
    its operations announced (see ``announces_reads``)."""

    values: weakref.WeakKeyDictionary[Host, dict[tuple, Any]] = weakref.WeakKeyDictionary()
    announced: weakref.WeakKeyDictionary[Host, list[_Read]] = weakref.WeakKeyDictionary()
    reading: set[int] = set()  # ids of hosts whose fact command is running now

    @classmethod
    def forget(cls, host: Host) -> None:
        if id(host) not in cls.reading:
            cls.values.pop(host, None)


def _planned(host: Host, cls: Any, kwargs: dict[str, Any], printed: bool = True) -> tuple[tuple, _Read | None]:
    """The memo key of ``host.get_fact(cls, **kwargs)`` read now, and the read itself if it can
    share a command with others. pyinfra's fact loader decides how the command runs (sudo,
    user, env) from the operation's arguments, the call's, then the deploy's, host data and
    config: so does this."""
    arguments: dict[str, Any] = {**dict(host.current_op_global_arguments or {}), **kwargs}
    run_as, _ = pop_global_arguments(host.state, host, arguments)  # leaves the fact's own in arguments
    connector = {name: value for name, value in run_as.items() if name in CONNECTOR_ARGUMENT_KEYS}
    key = (cls, repr(sorted(arguments.items())), repr(sorted(connector.items())))
    fact = cls()
    if isinstance(fact, ShortFactBase) or fact.shell_executable or fact.check_preconditions(host.state, host):
        return key, None
    command = fact.command(**arguments) if callable(fact.command) else fact.command
    return key, _Read(key, fact, command, connector, fact.requires_command(**arguments), printed)


def _read_together(host: Host, reads: list[_Read]) -> None:
    """Run ``reads`` in one command per way of running (sudo, user), and remember their values.

    With ``-vvv`` each fact's output is printed as pyinfra prints it, except facts announced
    as holding secrets. A fact whose output cannot be told apart or processed is left for its
    own read."""
    memo = _FactMemo.values.setdefault(host, {})
    groups: dict[str, list[_Read]] = {}
    for read in reads:
        if read.key not in memo:
            groups.setdefault(repr(sorted(read.run_as.items())), []).append(read)
    for group in groups.values():
        unique = list({read.key: read for read in group}.values())
        if len(unique) < 2:
            continue
        marker = f"hardening-{secrets.token_hex(8)}"
        script = StringCommand(*(bit for index, read in enumerate(unique) for bit in _framed(read, marker, index)))
        _FactMemo.reading.add(id(host))
        try:
            status, output = host.run_shell_command(script, print_output=False, print_input=False, **unique[0].run_as)
        finally:
            _FactMemo.reading.discard(id(host))
        if status:
            outputs = _remember_output(memo, unique, marker, output.stdout_lines)
            if host.state.print_fact_output:
                for read, lines in outputs:
                    for line in lines if read.printed else []:
                        click.echo(f"{host.print_prefix}{line}", err=True)


def _framed(read: _Read, marker: str, index: int) -> tuple[Any, ...]:
    """``read``'s command between two marker lines, the second with its exit status."""
    if read.requires is None:
        return (f"echo {marker}-{index}; (", read.command, f"); echo {marker}-{index}-$?;")
    return (
        f"echo {marker}-{index}; if command -v {shlex.quote(read.requires)} >/dev/null 2>&1; then (",
        read.command,
        f"); else echo {marker}-missing; fi; echo {marker}-{index}-$?;",
    )


def _remember_output(
    memo: dict[tuple, Any], reads: list[_Read], marker: str, stdout: list[str]
) -> list[tuple[_Read, list[str]]]:
    """Remember each fact's value from the batch's ``stdout``; return each read's own lines."""
    outputs: list[tuple[_Read, list[str]]] = []
    lines = iter(stdout)
    for index, read in enumerate(reads):
        if next(lines, None) != f"{marker}-{index}":
            return outputs
        fact_lines: list[str] = []
        for line in lines:
            end = re.fullmatch(rf"(.*){marker}-{index}-(\d+)", line)
            if end is None:
                fact_lines.append(line)
                continue
            if end.group(1):  # the fact's last line had no newline
                fact_lines.append(end.group(1))
            break
        else:
            return outputs
        if fact_lines == [f"{marker}-missing"]:
            continue  # pyinfra's own read says what a missing program means
        # As pyinfra's loader: output is processed only from a command that succeeded.
        try:
            memo[read.key] = (
                read.fact.process(fact_lines) if end.group(2) == "0" and fact_lines else read.fact.default()
            )
        except FactProcessError:
            continue
        outputs.append((read, fact_lines))
    return outputs


def _remembered_get_fact(original: Callable) -> Callable:
    def get_fact(self: Host, cls: Any, *args: Any, **kwargs: Any) -> Any:
        if args:  # positional fact arguments: pyinfra maps them; not worth remembering
            return original(self, cls, *args, **kwargs)
        key, read = _planned(self, cls, kwargs)
        memo = _FactMemo.values.setdefault(self, {})
        announced = _FactMemo.announced.pop(self, []) if executing() and key not in memo else []
        if announced:
            _read_together(self, [*([read] if read is not None else []), *announced])
        if key not in memo:
            _FactMemo.reading.add(id(self))
            try:
                memo[key] = original(self, cls, **kwargs)
            finally:
                _FactMemo.reading.discard(id(self))
        # A copy: an operation may edit the value it was given.
        return copy.deepcopy(memo[key])

    get_fact.remembers = True  # type: ignore[attr-defined]
    return get_fact


def _forgetting(original: Callable) -> Callable:
    def method(self: Host, *args: Any, **kwargs: Any) -> Any:
        _FactMemo.forget(self)
        return original(self, *args, **kwargs)

    return method


def remember_facts_between_changes() -> None:
    """Read each fact once per host until something runs there that may change it, and the
    facts operations announced in as few round trips as possible.

    pyinfra 3 reads a fact anew every time an operation asks (its fact cache went with v2),
    one command per fact: a role's no-op re-run read DebPackages eleven times and Users three,
    each read a round trip with sudo. Here a fact's value is kept per host, keyed by the fact,
    its arguments and how it is run (sudo, user, env), and dropped as soon as that host runs
    any command that is not a fact's own, uploads a file or reconnects. Nothing else changes a
    host within a run, so a kept value is what a new read would say."""
    if getattr(Host.get_fact, "remembers", False):
        return
    Host.get_fact = _remembered_get_fact(Host.get_fact)  # type: ignore[method-assign]
    for name in ("run_shell_command", "put_file", "rsync", "connect", "disconnect"):
        setattr(Host, name, _forgetting(getattr(Host, name)))


# Facts to read, each as ``host.get_fact(cls, **kwargs)``: (cls, kwargs).
FactReads = list[tuple[type[FactBase], dict[str, Any]]]


def read_facts_at_once(reads: FactReads) -> None:
    """Read several facts of the current host in one round trip, each as
    ``host.get_fact(cls, **kwargs)`` would read it now, and remember them (does nothing unless
    ``remember_facts_between_changes`` is on)."""
    host = current_host()
    if host is None or not getattr(Host.get_fact, "remembers", False):
        return
    planned = [_planned(host, cls, kwargs)[1] for cls, kwargs in reads]
    _read_together(host, [read for read in planned if read is not None])


def announce_reads(reads: FactReads, run_as: dict[str, Any] | None = None, secret: bool = False) -> None:
    """Note facts an operation added next will read when it runs. The first
    fact read while executing that is not remembered reads every noted one in the same round
    trip, so a no-op re-run costs a few round trips, not one per fact. ``secret``: their output
    holds secrets, never printed (not even by ``-vvv``)."""
    host = current_host()
    if host is None or not getattr(Host.get_fact, "remembers", False):
        return
    for cls, arguments in reads:
        read = _planned(host, cls, {**arguments, **(run_as or {})}, printed=not secret)[1]
        if read is not None:
            _FactMemo.announced.setdefault(host, []).append(read)


def announces_reads(reads: Callable[..., FactReads], secret: bool = False) -> Callable[[Any], Any]:
    """Decorate an ``@operation`` (this project's, or pyinfra's as in managed_files) with the
    facts it reads when it runs, ``reads(**its arguments)``: each call announces them
    (``announce_reads``, ``secret`` likewise)."""

    def decorate(operation: Any) -> Any:
        @functools.wraps(operation)
        def add(*args: Any, **kwargs: Any) -> Any:
            if current_host() is not None:
                run_as = {name: value for name, value in kwargs.items() if name in all_argument_meta}
                announce_reads(reads(*args, **kwargs), run_as, secret)
            return operation(*args, **kwargs)

        add.announced_reads = reads  # type: ignore[attr-defined]
        return add

    return decorate


def _without_nagle(original: Callable) -> Callable:
    def start_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self.sock, socket.socket) and self.sock.family in (socket.AF_INET, socket.AF_INET6):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return original(self, *args, **kwargs)

    start_client.sends_at_once = True  # type: ignore[attr-defined]
    return start_client


def _send_commands_at_once() -> None:
    """Turn Nagle's algorithm off on the SSH sockets pyinfra opens.

    Neither paramiko nor sshd (for sessions without a terminal) sets TCP_NODELAY, so each of
    pyinfra's commands waits for a delayed ACK (about 40 ms on Linux) before its last small
    packet leaves: over half of a no-op run's time. A proxied connection (its socket is not
    TCP) is left as it is."""
    method = paramiko.Transport.__dict__["start_client"]
    if not getattr(method, "sends_at_once", False):
        paramiko.Transport.start_client = _without_nagle(method)  # type: ignore[method-assign]


def speed_up_runs() -> None:
    """Make pyinfra's runs faster without changing what they do (config.py calls this): SSH
    commands sent without Nagle's delay, facts read once between changes."""
    _send_commands_at_once()
    remember_facts_between_changes()
