"""Config files that are validated before they land, rendered from the shipped templates.

pyinfra's own file operations upload straight to the target; a broken sudoers, sshd_config or
rule set would then be live before anything noticed. Here the new content goes to a candidate
file beside the target, the validator runs on the candidate, and only a passing candidate is
moved over the target in the same shell command. A failing one is deleted and the op fails.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from importlib import resources
from io import StringIO
from pathlib import Path
from typing import Any, Callable

import jinja2
from pyinfra import host, logger, state
from pyinfra.api import FactBase, FileUploadCommand, StringCommand, operation
from pyinfra.api.command import PyinfraCommand
from pyinfra.facts.files import Directory, File, FileContents
from pyinfra.operations import files
from pyinfra.operations.util.files import generate_color_diff

from . import compat

# pyinfra's own folder and file operations, with the fact each reads when it runs announced
# (compat.announces_reads): a run reads them with the others' facts, not one round trip each.
directory = compat.announces_reads(lambda **arguments: [(Directory, {"path": arguments["path"]})])(files.directory)
plain_file = compat.announces_reads(lambda **arguments: [(File, {"path": arguments["path"]})])(files.file)

# The project's own files on a host: the directory is root's, its secrets root's alone.
CONFIG_DIR = "/etc/pyinfra-hardening"
# Where uploads wait for sudo to move them, whatever TEMP_DIR a project set: pyinfra's default
# (the TMPDIR a sudo session sees) is root's alone under libpam-tmpdir, and the login user's
# SFTP upload could not write there.
UPLOAD_DIR = "/tmp"


def template_root() -> Path:
    """The templates shipped inside this package (an editable install maps them to the repo's
    top-level templates/ folder). Nothing else is searched, so no other distribution's
    ``templates/`` can stand in for ours."""
    return Path(str(resources.files("pyinfra_hardening.templates")))


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(template_root())),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(target_path: str, **context: Any) -> str:
    """Render the template that mirrors ``target_path`` (``/etc/x`` -> ``templates/etc/x.j2``)."""
    return _environment.get_template(target_path.lstrip("/") + ".j2").render(**context)


def sha256_of(text: str) -> str:
    """What ``sha256sum`` (and pyinfra's Sha256File fact) says of a file holding ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()


def candidate_path(dest: str) -> str:
    """Where a new version of ``dest`` waits, beside it, until it is checked and moved over it."""
    return f"{dest}.hardening-candidate"


def upload_text(path: str, content: str) -> FileUploadCommand:
    """Upload ``content`` to ``path`` (through a temporary file when sudo moves it into place)."""
    return FileUploadCommand(
        StringIO(content), path, remote_temp_filename=host.get_temp_filename(path, temp_directory=UPLOAD_DIR)
    )


def text_of(lines: list[str]) -> str:
    """File text from the lines a FileContents fact gives (which have no line endings)."""
    return "".join(f"{line}\n" for line in lines)


def masked(text: str, secret_pattern: str | None) -> str:
    """``text`` with what the first group of each ``secret_pattern`` match holds shown as *MASKED*."""
    if not secret_pattern:
        return text
    return re.sub(secret_pattern, lambda match: match.group(0).replace(match.group(1), "*MASKED*"), text)


def print_diff(dest: str, old_lines: list[str] | None, new_content: str, secret_pattern: str | None = None) -> None:
    """Show a change as ``--diff`` does for pyinfra's own file operations, secrets masked.

    ``old_lines`` are the current lines without endings; None when the file is new."""
    host.log(f"Will {'create' if old_lines is None else 'modify'} {dest}", logger.info)
    old_text = masked(text_of(old_lines or []), secret_pattern)
    for line in generate_color_diff(
        old_text.splitlines(keepends=True), masked(new_content, secret_pattern).splitlines(keepends=True)
    ):
        logger.info("  %s", line)
    logger.info("")


@dataclass(frozen=True)
class FileState:
    user: str
    group: str
    mode: int  # permission bits, e.g. 0o640
    sha256: str


class ManagedFile(FactBase["FileState | None"]):
    """A regular file's owner, group, permissions and SHA-256, in one round trip (pyinfra's
    File and Sha256File facts take one each); None when ``path`` is not a regular file."""

    def command(self, path: str) -> str:
        quoted = shlex.quote(path)
        return (
            f"if [ -f {quoted} ] && [ ! -L {quoted} ]; then stat -c '%U %G %a' -- {quoted} && sha256sum -- {quoted}; fi"
        )

    def process(self, output: list[str]) -> FileState | None:
        user, group, mode = output[0].split()
        return FileState(user, group, int(mode, 8), output[1].split()[0])


@compat.announces_reads(lambda dest, *_, **__: [(ManagedFile, {"path": dest})])
@operation()
def validated_file(
    dest: str,
    content: str | Callable[[], str],
    validator: str | None,
    user: str = "root",
    group: str = "root",
    mode: str = "644",
    secret_pattern: str | None = None,
) -> Any:
    """
    Make ``dest`` hold ``content``, landing it only if ``validator`` accepts the candidate.

    + dest: the file to manage
    + content: its whole desired text, or a function that returns it when the operation runs
      (for text holding a secret that is generated into the store only on apply)
    + validator: a command with ``{}`` where the candidate's path goes, e.g. ``visudo -cf {}``;
      None for files nothing can check (the swap is still atomic)
    + user, group, mode: ownership and permissions, set on the candidate before it lands
    + secret_pattern: for a file holding secrets, a regex whose first group is a secret: the diff
      masks it, and the content travels only through owner-only files
    """
    if callable(content):
        content = content()
    current = host.get_fact(ManagedFile, path=dest)
    if current is None or current.sha256 != sha256_of(content):
        if state.config.DIFF:
            with compat.fact_output_unprinted() if secret_pattern else nullcontext():
                old = host.get_fact(FileContents, path=dest) if current is not None else None
            print_diff(dest, old, content, secret_pattern)
        candidate = candidate_path(dest)
        quoted = shlex.quote(candidate)
        if secret_pattern:
            yield from upload_secret(candidate, content, user, group, mode)
        else:
            yield upload_text(candidate, content)
        check = validator.replace("{}", quoted) if validator else "true"
        yield StringCommand(
            f"chown {user}:{group} {quoted} && chmod {mode} {quoted} && "
            f"if {check}; then mv -f {quoted} {shlex.quote(dest)}; "
            f"else rm -f {quoted}; echo 'hardening: candidate for {dest} failed validation; "
            f"the live file was left as it was' >&2; exit 1; fi"
        )
        return

    if (current.user, current.group) == (user, group) and current.mode == int(mode, 8):
        host.noop(f"{dest} is as configured")
        return
    if (current.user, current.group) != (user, group):
        yield StringCommand(f"chown {user}:{group} {shlex.quote(dest)}")
    if current.mode != int(mode, 8):
        yield StringCommand(f"chmod {mode} {shlex.quote(dest)}")


def upload_secret(dest: str, content: str, user: str, group: str, mode: str) -> Iterator[PyinfraCommand]:
    """Commands that put secret ``content`` at ``dest`` without it ever being readable by others.

    The upload lands in a file the connecting user created with mode 600 first (SFTP keeps an
    existing file's mode), then ``install`` copies it into place with its final owner and mode.
    """
    staging = host.get_temp_filename(dest, temp_directory=UPLOAD_DIR)
    yield StringCommand(f"install -m 600 /dev/null {shlex.quote(staging)}", _sudo=False)
    yield FileUploadCommand(StringIO(content), staging, remote_temp_filename=staging, _sudo=False)
    yield StringCommand(
        f"install -o {user} -g {group} -m {mode} {shlex.quote(staging)} {shlex.quote(dest)}; "
        f"status=$?; rm -f {shlex.quote(staging)}; exit $status"
    )


def staged_statements(service: str, statements: list[str], path: str, secret_pattern: str) -> Iterator[PyinfraCommand]:
    """Commands that put ``statements`` for ``service``'s client in a root-only file at ``path``
    (they hold password hashes: never on a command line), shown first under ``--diff`` with
    ``secret_pattern`` masked. The caller runs the client on the file and removes it."""
    if state.config.DIFF:
        host.log(f"Will run in {service}:", logger.info)
        for statement in statements:
            logger.info("  %s", masked(statement, secret_pattern))
    yield from upload_secret(path, "\n".join(statements) + "\n", "root", "root", "600")
