"""pyinfra config for `make bench` runs: the project's own config, plus a record of what each
run did on each host (remote commands, facts read, each operation's time), written as JSON to
$BENCH_RECORD when the run ends. pyinfra prints no per-operation timing; this measures it with
pyinfra's state callbacks. Bench-only: it wraps two pyinfra internals (the SSH connector's
command runner and the fact loader) to count, and changes nothing they do.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from collections import Counter
from typing import Any

import pyinfra.api.facts as pyinfra_facts
from pyinfra.api.state import BaseStateCallback, State
from pyinfra.connectors.ssh import SSHConnector

from pyinfra_hardening import compat, roles, ssh_login

roles.check_before_connecting()
ssh_login.install()
compat.speed_up_runs()

commands: Counter[str] = Counter()
facts: Counter[str] = Counter()
fact_names: dict[str, Counter[str]] = {}
started: dict[tuple[str, str], float] = {}
operations: list[dict[str, Any]] = []
run_command = SSHConnector.run_shell_command
get_fact = pyinfra_facts._get_fact


def _counted_command(self: SSHConnector, *args: Any, **kwargs: Any) -> Any:
    commands[self.host.name] += 1
    return run_command(self, *args, **kwargs)


def _counted_fact(state: Any, host: Any, cls: Any, *args: Any, **kwargs: Any) -> Any:
    facts[host.name] += 1
    fact_names.setdefault(host.name, Counter())[cls.__name__] += 1
    return get_fact(state, host, cls, *args, **kwargs)


SSHConnector.run_shell_command = _counted_command  # type: ignore[method-assign]
pyinfra_facts._get_fact = _counted_fact


marks: dict[str, float] = {"config": time.time()}


class OperationTimes(BaseStateCallback):
    @staticmethod
    def host_before_connect(state: Any, host: Any) -> None:
        marks.setdefault("connecting", time.time())

    @staticmethod
    def host_connect(state: Any, host: Any) -> None:
        marks["connected"] = time.time()

    @staticmethod
    def operation_start(state: Any, op_hash: str) -> None:
        marks.setdefault("first operation", time.time())

    @staticmethod
    def operation_host_start(state: Any, host: Any, op_hash: str) -> None:
        started[(host.name, op_hash)] = time.perf_counter()

    @staticmethod
    def operation_host_success(state: Any, host: Any, op_hash: str, *_: Any) -> None:
        begun = started.pop((host.name, op_hash), None)
        if begun is not None:
            name = ", ".join(sorted(state.get_op_meta(op_hash).names))
            operations.append({"host": host.name, "operation": name, "seconds": time.perf_counter() - begun})

    operation_host_error = operation_host_success


state_init = State.init


def _init_and_time(self: State, *args: Any, **kwargs: Any) -> None:
    state_init(self, *args, **kwargs)
    self.add_callback_handler(OperationTimes())  # callback handlers exist once the state is initialised


State.init = _init_and_time  # type: ignore[method-assign]


@atexit.register
def _write() -> None:
    path = os.environ.get("BENCH_RECORD")
    if path:
        marks["end"] = time.time()
        record = {"marks": marks, "commands": commands, "facts": facts, "fact_names": fact_names}
        with open(path, "w") as out:
            json.dump({**record, "operations": operations}, out)
