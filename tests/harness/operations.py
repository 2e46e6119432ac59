"""Operations run the way pyinfra's own tests run theirs: facts in, commands or a noop reason
out, with no host behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyinfra.api import Config, FileUploadCommand, Inventory, State, StringCommand
from pyinfra.context import ctx_host, ctx_state


@dataclass
class Outcome:
    """What an operation yielded for the given facts."""

    commands: list[str] = field(default_factory=list)  # shell commands as printed (secrets masked)
    raw: list[str] = field(default_factory=list)  # the same, as run
    uploads: dict[str, str] = field(default_factory=dict)  # where an upload goes -> its content
    noop: str | None = None
    facts_printed: list[bool] = field(default_factory=list)  # pyinfra's -vvv flag as each fact was read

    @property
    def changes(self) -> bool:
        return bool(self.commands or self.uploads)


def run_operation(operation: Any, facts: dict, print_fact_output: bool = False, **arguments: Any) -> Outcome:
    """Run ``operation`` (a pyinfra ``@operation``) with ``arguments`` against ``facts``: a fact
    class maps to its value, or ``(fact class, (("arg", value), ...))`` to the value for those
    arguments. A fact the operation asks for and ``facts`` lacks fails the test."""
    inventory = Inventory((["testhost"], {}))
    state = State(inventory, Config())
    state.print_fact_output = print_fact_output
    host = inventory.get_host("testhost")
    outcome = Outcome()

    def get_fact(cls: type, *args: Any, **kwargs: Any) -> Any:
        outcome.facts_printed.append(state.print_fact_output)
        key = (cls, tuple(sorted(kwargs.items())))
        if key in facts:
            return facts[key]
        if cls in facts:
            return facts[cls]
        raise AssertionError(f"the operation asked for a fact the test did not give: {key}")

    def noop(reason: str) -> None:
        outcome.noop = reason

    host.get_fact = get_fact  # type: ignore[method-assign]
    host.noop = noop  # type: ignore[method-assign]
    host.get_temp_filename = lambda *args, **kwargs: "/tmp/pyinfra-temp"  # type: ignore[method-assign]
    with ctx_state.use(state), ctx_host.use(host):
        for command in operation._inner(**arguments):
            if isinstance(command, FileUploadCommand):
                outcome.uploads[command.dest] = command.src.getvalue()
            elif isinstance(command, StringCommand):
                outcome.commands.append(command.get_masked_value())
                outcome.raw.append(command.get_raw_value())
            else:
                raise AssertionError(f"unexpected command {command!r}")
    return outcome
