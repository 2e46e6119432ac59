"""Facts read once between changes, and read together: against pyinfra's own @local connector,
with facts that count how often their command really ran."""

from __future__ import annotations

import pytest
from pyinfra.api import Config, FactBase, Inventory, State
from pyinfra.api.host import Host
from pyinfra.context import ctx_host, ctx_state
from pyinfra.facts.files import Directory, File

from pyinfra_hardening import compat
from pyinfra_hardening.managed_files import FileState, ManagedFile, directory, plain_file
from pyinfra_hardening.services import UnitState, UnitStatus


class Runs(FactBase[int]):
    """How often this fact's command has run for ``label`` (it appends a line each time)."""

    def command(self, label: str, tally: str) -> str:
        return f"echo {label} >> {tally}; grep -c {label} {tally}"

    def process(self, output: list[str]) -> int:
        return int(output[0])


class NoNewline(FactBase[list[str]]):
    command = "printf 'one\\ntwo'"

    def process(self, output: list[str]) -> list[str]:
        return output


class Fails(FactBase[str]):
    command = "echo partial; exit 3"
    default = str

    def process(self, output: list[str]) -> str:
        return output[0]


class NeedsAbsentProgram(FactBase[str]):
    default = str

    def requires_command(self, *args: object, **kwargs: object) -> str:
        return "no-such-program-anywhere"

    def command(self) -> str:
        return "no-such-program-anywhere"

    def process(self, output: list[str]) -> str:
        return output[0]


@pytest.fixture
def local_host(monkeypatch, tmp_path):
    """The local machine as a pyinfra host, facts remembered; Host's methods restored after."""
    for name in ("get_fact", "run_shell_command", "put_file", "rsync", "connect", "disconnect"):
        monkeypatch.setattr(Host, name, getattr(Host, name))
    compat.remember_facts_between_changes()
    inventory = Inventory((["@local"], {}))
    state = State(inventory, Config())
    host = inventory.get_host("@local")
    commands: list[str] = []
    run = host.connector.run_shell_command

    def counted(command, **kwargs):
        commands.append(str(command))
        return run(command, **kwargs)

    monkeypatch.setattr(host.connector, "run_shell_command", counted)
    with ctx_state.use(state), ctx_host.use(host):
        host.connect()
        yield host, state, commands, str(tmp_path / "tally")


def test_a_fact_is_read_once_until_a_command_runs_on_the_host(local_host):
    host, _, _, tally = local_host
    assert host.get_fact(Runs, label="a", tally=tally) == 1
    assert host.get_fact(Runs, label="a", tally=tally) == 1
    assert host.get_fact(Runs, label="b", tally=tally) == 1  # other arguments: a read of its own
    host.run_shell_command("true")  # anything run may change what facts say
    assert host.get_fact(Runs, label="a", tally=tally) == 2


def test_a_fact_read_another_way_is_read_again(local_host):
    host, _, commands, tally = local_host
    host.get_fact(Runs, label="a", tally=tally)
    host.get_fact(Runs, label="a", tally=tally, _env={"LC_ALL": "C"})
    assert host.get_fact(Runs, label="a", tally=tally, _env={"LC_ALL": "C"}) == 2
    assert len(commands) == 2


def test_several_facts_are_read_in_one_command_each_as_its_own_read_would(local_host):
    host, _, commands, tally = local_host
    compat.read_facts_at_once(
        [(Runs, {"label": "a", "tally": tally}), (NoNewline, {}), (Fails, {}), (NeedsAbsentProgram, {})]
    )
    assert len(commands) == 1
    assert host.get_fact(Runs, label="a", tally=tally) == 1
    assert host.get_fact(NoNewline) == ["one", "two"]
    assert host.get_fact(Fails) == ""  # a failed command gives the default, as pyinfra's read does
    assert len(commands) == 1
    host.get_fact(NeedsAbsentProgram)  # left to pyinfra's own read, which knows what absence means
    assert len(commands) == 2


def test_facts_announced_while_planning_are_read_together_when_execution_needs_the_first(local_host):
    host, state, commands, tally = local_host
    compat.announce_reads([(Runs, {"label": label, "tally": tally}) for label in ("a", "b", "c")])
    assert commands == []  # announcing reads nothing
    state.is_executing = True
    assert host.get_fact(Runs, label="b", tally=tally) == 1
    assert [host.get_fact(Runs, label=label, tally=tally) for label in ("a", "c")] == [1, 1]
    assert len(commands) == 1


def test_a_remembered_value_is_a_copy_an_operation_may_edit(local_host):
    host, _, _, _ = local_host
    host.get_fact(NoNewline).append("three")
    assert host.get_fact(NoNewline) == ["one", "two"]


def test_a_managed_file_is_read_with_its_owner_mode_and_hash_in_one_fact(local_host, tmp_path):
    host, _, commands, _ = local_host
    path = tmp_path / "file"
    path.write_text("a\n")
    path.chmod(0o640)
    state = host.get_fact(ManagedFile, path=str(path))
    assert isinstance(state, FileState) and state.mode == 0o640
    assert state.sha256 == "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7"
    (tmp_path / "link").symlink_to(path)
    assert host.get_fact(ManagedFile, path=str(tmp_path / "link")) is None
    assert host.get_fact(ManagedFile, path=str(tmp_path / "absent")) is None
    assert len(commands) == 3


def test_a_unit_runs_and_is_enabled_as_systemd_reports_it():
    fact = UnitState()
    assert fact.process(["SubState=running", "UnitFileState=enabled"]) == UnitStatus(running=True, enabled=True)
    assert fact.process(["SubState=dead", "UnitFileState=disabled"]) == UnitStatus(running=False, enabled=False)
    assert fact.process(["SubState=exited", "UnitFileState=static"]) == UnitStatus(running=True, enabled=True)


def test_verbose_runs_print_what_facts_read_together_say_except_secrets(local_host, capsys):
    """pyinfra's -vvv prints each fact's output: batched facts too, unless announced as secret."""
    host, state, _, tally = local_host
    state.print_fact_output = True
    compat.announce_reads([(NoNewline, {})])
    compat.announce_reads([(Fails, {})], secret=True)
    state.is_executing = True
    host.get_fact(Runs, label="a", tally=tally)
    printed = capsys.readouterr().err
    assert "two" in printed and "partial" not in printed


def test_pyinfras_folder_and_file_operations_read_their_facts_with_the_others(local_host, tmp_path):
    """managed_files' directory and plain_file: what pyinfra's operations read is announced."""
    host, state, commands, _ = local_host
    state.check_for_changes = False  # as with -y: nothing is read while planning
    folders = [str(tmp_path / name) for name in ("one", "two")]
    for folder in folders:
        directory(name=f"{folder} exists", path=folder)
    plain_file(name="a file exists", path=str(tmp_path / "file"))
    assert commands == []
    state.is_executing = True
    assert host.get_fact(Directory, path=folders[1]) is None
    assert (
        host.get_fact(Directory, path=folders[0]) is None and host.get_fact(File, path=str(tmp_path / "file")) is None
    )
    assert len(commands) == 1
