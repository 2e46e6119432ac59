"""The aggregator: each concern's settings model, validated for every host of the run at once.

``settings_for(host, SshSettings)`` validates that model's values for every host the run
touches on first use, so one bad value anywhere stops the run before a single operation runs,
with one message naming each host, key, value and fix; the roles validate all their concerns,
rules included, on all their hosts up front. Keys that no model names are the user's own and
are left alone, except near misses of this project's keys (typos) and secrets in committed data.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakKeyDictionary

from pydantic import ValidationError
from pyinfra.api.exceptions import PyinfraError

from . import compat, secret_store
from .data_types import HostSettings, unsafe_character
from .secret_store import MASK, Secret

if TYPE_CHECKING:
    from pyinfra.api.host import Host
    from pyinfra.api.inventory import Inventory

Model = TypeVar("Model", bound=HostSettings)
# Data keys that name a secret: `_sudo_password`, `ssh_password`, `smtp_password`, `api_token`...
SECRET_KEY_RE = re.compile(r"(pass(word|wd|phrase)|secret|token|private_key)$", re.IGNORECASE)
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "pwd")


def looks_secret(key: str) -> bool:
    """Whether ``key`` names a secret, misspelt or not (``smtp_pasword`` too)."""
    last = key.lower().split("_")[-1]
    return bool(SECRET_KEY_RE.search(key) or difflib.get_close_matches(last, SECRET_WORDS, n=1, cutoff=0.8))


SECRET_FIXES = {
    "_sudo_password": "delete it there; put admin NAME's password in the secret store as admin-NAME.password: "
    "pyinfra sudoes with it when a run connects as NAME",
    "ssh_password": "delete it there; log in with a key (ssh_key), or type it with --ssh-password-prompt",
    "ssh_key_password": "delete it there; load the key into ssh-agent, or pass --key-password on the command line",
    "app_database_password": "delete it there; the application's database password lives in the secret store as "
    "app-database-password",
}
UNSAFE_FIX = "retype it in plain text (a copy from a web page, chat or PDF can carry invisible characters)"


@dataclass(frozen=True)
class Problem:
    """One reason a host's data cannot be applied, and what would fix it."""

    host: str
    key: str
    value: Any
    what: str
    fix: str

    def __str__(self) -> str:
        shown = MASK if looks_secret(self.key) else repr(self.value)
        if self.value is UNSHOWN:
            return f"  host {self.host}: {self.key} {self.what}.\n    fix: {self.fix}"
        return f"  host {self.host}: {self.key} = {shown} {self.what}.\n    fix: {self.fix}"


# The value of a key that is itself the mistake (a typo): it may be a secret under a misspelt
# name, and showing it would help nobody.
UNSHOWN = object()


class SettingsError(PyinfraError):
    """Bad host data; raised before any operation runs on any host."""

    def __init__(self, problems: list[Problem]):
        # A rule several concerns share is said once.
        self.problems = list({str(problem): problem for problem in problems}.values())
        lines = "\n".join(str(problem) for problem in self.problems)
        super().__init__(secret_store.mask(f"invalid settings, nothing was changed on any host:\n{lines}"))


def stored(host: Host, name: str, key: str, value: Any, problems: list[Problem]) -> Secret | None:
    """The secret ``name`` from the store, None when it has none; one the store cannot trust
    (readable by others) is a problem on ``key`` instead."""
    try:
        return secret_store.lookup(name)
    except secret_store.SecretStoreError as error:
        problems.append(Problem(host.name, key, value, "has an unsafe secret", str(error)))
        return None


def _problem(host: Host, model: type[HostSettings], values: dict, error: Any) -> Problem:
    context = error.get("ctx") or {}
    key = context.get("key") or str(error["loc"][0])
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"][1:])
    what = context.get("what") or (str(context["error"]) if error["type"] == "value_error" else error["msg"])
    if error["type"] == "extra_forbidden":
        what = "is not a field this project knows"
    if where:
        what = f"has a value at {where.lstrip('.')} that {what}"
    fix = context.get("fix") or f"see the {key} row in README.md"
    # A rule across keys may name one left at its default.
    default = model.model_fields[key].default if key in model.model_fields else None
    return Problem(host.name, key, values.get(key, default), what, fix)


def validated(host: Host, model: type[Model], in_use: bool = True) -> tuple[Model | None, list[Problem]]:
    """``model`` over ``host``'s data, or the problems that stop it: its values, and where the
    concern is ``in_use`` on the host, the rules that need the store, files or the inventory."""
    data = host.data.dict()
    values = {key: data[key] for key in model.model_fields if key in data}
    unsafe = [
        Problem(host.name, key, value, f"contains {found}, which could add a line or hide a difference", UNSAFE_FIX)
        for key, value in values.items()
        if (found := unsafe_character(value))
    ]
    if unsafe:
        return None, unsafe
    try:
        settings = model.model_validate(values)
    except ValidationError as error:
        return None, [_problem(host, model, values, item) for item in error.errors()]
    return settings, settings.problems(host) if in_use else []


def own_keys() -> set[str]:
    """The keys of every settings model imported so far (each concern module defines its own)."""
    return {key for model in HostSettings.__subclasses__() for key in model.model_fields}


def key_problems(host: Host) -> list[Problem]:
    """Near misses of this project's keys, and secrets written into committed data.

    A key that is one of ours plus an ``s`` or a further ``_word`` (``app_users``,
    ``backup_times``) is taken as the user's own; any other near miss is refused, as is one of
    ours in the wrong case."""
    ours = own_keys()
    known = ours | compat.pyinfra_data_keys()
    problems = []
    for key, value in host.data.dict().items():
        if key in known or key.startswith("__"):
            continue
        close = [
            match
            for match in difflib.get_close_matches(key.lower(), sorted(known), n=3, cutoff=0.8)
            if not (key.startswith(f"{match}_") or key == f"{match}s")
        ]
        if close:
            fix = f"rename it to {close[0]!r} (or remove it)"
            problems.append(Problem(host.name, key, UNSHOWN, "is not a setting this project knows", fix))
    problems += bare_annotations(host)
    our_prefixes = {key.split("_")[0] for key in ours}
    for layer in compat.committed_data_layers(host):
        for key, value in layer.items():
            ours_or_pyinfra = key in SECRET_FIXES or key.split("_")[0] in our_prefixes
            if ours_or_pyinfra and looks_secret(key) and isinstance(value, str) and value:
                fix = SECRET_FIXES.get(
                    key, "delete it there; secrets come only from the secret store (README.md, Secrets)"
                )
                problems.append(Problem(host.name, key, value, "is a plaintext secret in committed host data", fix))
    return problems


def bare_annotations(host: Host) -> list[Problem]:
    """``key: value`` lines in ``host``'s group_data files: Python reads them as annotations
    and sets nothing, so the setting would silently keep its default."""
    problems = []
    for path in compat.group_data_files(host):
        try:
            tree = ast.parse(path.read_text(), str(path))
        except (OSError, SyntaxError, ValueError):
            continue  # pyinfra's own loader has refused it already
        for node in tree.body:
            if isinstance(node, ast.AnnAssign) and node.value is None and isinstance(node.target, ast.Name):
                problems.append(
                    Problem(
                        host.name,
                        node.target.id,
                        UNSHOWN,
                        f"is only annotated on line {node.lineno} of {path.parent.name}/{path.name}, "
                        "which sets nothing in Python (a YAML-style 'key: value' line)",
                        f"write it as {node.target.id} = VALUE",
                    )
                )
    return problems


@dataclass
class _Checked:
    """What one inventory has been validated for so far in this process."""

    settings: dict[tuple[str, type], HostSettings] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)  # key checks done, sudo prepared
    # Settings whose rules also read their host: each host is read in its own deploy's turn.
    read: set[tuple[str, type]] = field(default_factory=set)


_checked: WeakKeyDictionary[Any, _Checked] = WeakKeyDictionary()


def validate(
    hosts: list[Host], models: list[type[HostSettings]], in_use: list[Host] | None = None, remember: bool = True
) -> None:
    """Validate ``models`` for every host in ``hosts`` (skipping what is done already): their
    values everywhere, their other rules on the hosts that use them (``in_use``, default all).
    Raise every problem on every host at once. Without ``remember`` (a check before connecting,
    when the rules that read the hosts cannot run yet) nothing counts as done afterwards."""
    if not hosts:
        return
    checked = _checked.setdefault(hosts[0].inventory, _Checked())
    using = {host.name for host in (hosts if in_use is None else in_use)}
    problems: list[Problem] = []
    found: dict[tuple[str, type], HostSettings] = {}
    current = compat.current_host()
    for host in hosts:
        if host.name not in checked.hosts:
            problems += key_problems(host)
            # Before any rule reads the host: facts such as sshd's ports need root to read.
            compat.sudo_with_stored_password(host)
        for model in models:
            done = (host.name, model) in checked.settings
            if not done or (host is current and (host.name, model) not in checked.read):
                settings, host_problems = validated(host, model, in_use=host.name in using)
                problems += host_problems
                if settings is not None and host.name in using:
                    found[(host.name, model)] = settings
    if problems:
        raise SettingsError(problems)
    if not remember:
        return
    checked.settings.update(found)
    checked.read |= {key for key in found if current is not None and key[0] == current.name and current.connected}
    checked.hosts |= {host.name for host in hosts}


def run_hosts(inventory: Inventory) -> list[Host]:
    """The hosts this run acts on (all of them outside a pyinfra run, as in unit tests)."""
    state = getattr(inventory, "state", None)
    return list(state.active_hosts) if state is not None else list(inventory)


def settings_for(host: Host, model: type[Model]) -> Model:
    """``host``'s settings of one concern. The first use validates its values on every host of
    the run, so a typo anywhere stops the run before anything changes; the roles validate every
    concern they use, rules included, on all their hosts before that."""
    validate(run_hosts(host.inventory), [model], in_use=[host])
    settings = _checked[host.inventory].settings[(host.name, model)]
    assert isinstance(settings, model)
    return settings
