"""File integrity: AIDE records the host's files once a deploy has made its changes, and a
nightly check alerts on any file added, removed or changed since.

The record is rebuilt at the end of every run that changed something on the host, so the
deploy's own edits never raise an alert; anything else (a hand edit, an intruder's file, a
package upgrade) is reported by the next nightly check through the login alerts' Monit. A
rebuild accepts the host as it stands: a difference that arose since the last nightly check and
before a changing deploy is not reported (run deploys on hosts whose last check was clean).
"""

from __future__ import annotations

import re
from posixpath import dirname
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.operations.util import any_changed

from . import audit_trail, backups, compat, remote_logging, services, session_store
from .data_types import ClockTime, Flag, HostSettings, described
from .login_alerts import WatchedLog
from .managed_files import candidate_path, directory, render, validated_file
from .packages import ensure_packages
from .settings import settings_for

AIDE_CONFIG = "/etc/aide/aide.conf"
AIDE_DROP_IN = "/etc/aide/aide.conf.d/90_pyinfra_hardening"
DATABASE = "/var/lib/aide/aide.db"
# Left by a run that could not rebuild the record after its last change: the next run does.
STALE_MARK = "/var/lib/aide/pyinfra-hardening.stale"
CHECK_SCRIPT = "/usr/local/lib/pyinfra-hardening/aide-check"
CHECK_CRON = "/etc/cron.d/pyinfra-hardening-aide-check"
CHECK_LOG = "/var/log/aide-check.log"
CHECK_REPORT = "/var/log/aide/aide-check.report"
# Debian's daily check runs as _aide with a capability a container does not grant, and mails
# its report through a mailer this project does not install; the check above replaces it.
DEBIAN_TIMER = "dailyaidecheck.timer"
# sha512 alone: Debian's "H" (every hash AIDE knows) makes a record take several times longer.
CHECKSUMS = "sha512"

# What this project's own parts change by design: backups made here or received (a drop box),
# Redis's append-only files; and logs its jobs append to (their owner and mode still checked).
PROJECT_DATA = (
    backups.BACKUP_DIR,
    f"{backups.CHROOT}/{backups.INCOMING_NAME}",
    f"{session_store.DATA_DIR}/appendonlydir",
    remote_logging.REMOTE_LOG_DIR,  # the log server's copies of the fleet's logs
    remote_logging.QUEUE_DIR,  # a sender's messages waiting for the log server
    audit_trail.LOG_DIR,  # auditd's own, rotated by itself
)
PROJECT_LOGS = (backups.LOG_FILE, CHECK_LOG)

CHECK_WATCH = WatchedLog(
    "aide_check",
    CHECK_LOG,
    "# The nightly AIDE check writes a line per run; a FAILED one (a file added, removed or changed,\n"
    "# or no check possible) is an alert. The list of files is in " + CHECK_REPORT + ".",
)

# A path AIDE leaves out: absolute, of characters that need no quoting in its config.
IgnoredPath = Annotated[
    str,
    StringConstraints(pattern=r"^(/[A-Za-z0-9._@+-]+)+$", max_length=255),
    described("must be an absolute path of A-Z a-z 0-9 . _ @ + - segments, like /srv/app/uploads"),
]


class FileIntegritySettings(HostSettings):
    title = "File integrity"

    file_integrity: Flag = Field(
        True,
        description="AIDE records the host's files after every run that changes it and checks them nightly: a "
        "file added, removed or changed since is an alert (to the login alerts' destinations)",
    )
    file_integrity_check_time: ClockTime = Field(
        "05:15", description="when the nightly check runs (HH:MM), before unattended-upgrades' morning run"
    )
    file_integrity_ignored_paths: Annotated[
        list[IgnoredPath], described("must be a list of absolute paths like /srv/app/uploads")
    ] = Field(
        [],
        description="folders and files your applications change by design (uploads, caches), left out of the "
        "check; Debian's own rules already leave out logs, spools and databases' files",
    )


def ignore_rule(path: str) -> str:
    """AIDE's rule leaving out ``path`` and everything under it (not /srv/app2 for /srv/app)."""
    return "!" + re.escape(path) + "(/|$)"


class AideChecksums(FactBase["str | None"]):
    """The hashes of AIDE's ``Checksums`` group in its config; None before the package is in."""

    def command(self) -> str:
        return f"test -e {AIDE_CONFIG} && sed -n 's/^Checksums[[:space:]]*=[[:space:]]*//p' {AIDE_CONFIG} || true"

    def process(self, output: list[str]) -> str | None:
        return output[-1].strip() if output else None


@compat.announces_reads(lambda **_: [(AideChecksums, {})])
@operation()
def checksums_set() -> Any:
    """
    Set the hashes of Debian's ``Checksums`` group to ``CHECKSUMS``, keeping the rest of its
    config: at run time, since the package that brings the file may come in the same run. The
    edited copy must pass AIDE's own check before it replaces the file.
    """
    if host.get_fact(AideChecksums) == CHECKSUMS:
        host.noop(f"AIDE hashes with {CHECKSUMS}")
        return
    candidate = candidate_path(AIDE_CONFIG)
    yield StringCommand(
        f"sed 's/^Checksums[[:space:]]*=.*/Checksums = {CHECKSUMS}/' {AIDE_CONFIG} > {candidate} && "
        f"grep -q '^Checksums = {CHECKSUMS}$' {candidate} && aide --config-check --config {candidate} && "
        f"mv -f {candidate} {AIDE_CONFIG} || {{ rm -f {candidate}; "
        f"echo 'hardening: {AIDE_CONFIG} has no Checksums group to set, or fails its check' >&2; exit 1; }}"
    )


class AideDatabase(FactBase[str]):
    """The state of AIDE's record of this host: ``missing``, ``stale`` (a run could not rebuild
    it after its last change) or ``current``."""

    def command(self) -> str:
        return (
            f"if [ ! -e {DATABASE} ]; then echo missing; "
            f"elif [ -e {STALE_MARK} ]; then echo stale; else echo current; fi"
        )

    def process(self, output: list[str]) -> str:
        return output[0].strip()


@compat.announces_reads(lambda **_: [(AideDatabase, {})])
@operation()
def database_recorded(mark_stale: bool = False) -> Any:
    """
    Record the host's files in AIDE's database (its files as they are now: run it last). Where
    the record is missing or stale it is written whatever ran before; otherwise the caller gates
    it on the run's changes (``_if``).

    + mark_stale: mark the new record stale, for a change that still follows it in this run
    """
    done = f"touch {STALE_MARK}" if mark_stale else f"rm -f {STALE_MARK}"
    yield StringCommand(f"aide --config {AIDE_CONFIG} --init >/dev/null && mv -f {DATABASE}.new {DATABASE} && {done}")


@deploy("File integrity")
def file_integrity() -> None:
    """
    AIDE with Debian's rules (sha512; scratch space, this project's data and
    ``file_integrity_ignored_paths`` left out) and a nightly check whose FAILED line in its log
    is an alert. Its record of the host is written by ``record``, after every change of the run.

    Example:

    .. code:: python

        from pyinfra_hardening import file_integrity
        file_integrity.file_integrity()
        ...  # the deploy's other changes
        file_integrity.record()
    """
    settings = settings_for(host, FileIntegritySettings)
    if not settings.file_integrity:
        return
    # aide-common holds the rules and the config; its recommended mailer is not needed.
    ensure_packages("Install AIDE and cron", ["aide", "aide-common", "cron"])
    services.unit_running(name="Debian's own daily AIDE check is off", unit=DEBIAN_TIMER, running=False, enabled=False)
    checksums_set(name=f"AIDE hashes with {CHECKSUMS}")
    validated_file(
        name="What AIDE leaves out",
        dest=AIDE_DROP_IN,
        content=render(
            AIDE_DROP_IN,
            project_rules=[ignore_rule(path) for path in PROJECT_DATA]
            + [f"{re.escape(path)}$ f Log" for path in PROJECT_LOGS],
            rules=[ignore_rule(path) for path in settings.file_integrity_ignored_paths],
            report=re.escape(CHECK_REPORT),
        ),
        # In the company of the main config's groups (the other drop-ins are Debian's).
        validator=f"{{ grep -v '^@@x_include /etc/aide/aide.conf.d' {AIDE_CONFIG}; cat {{}}; }} "
        "| aide --config-check --config -",
    )
    # Debian's aide-common makes it _aide:adm 2755; the report names files, so others are shut out.
    # The setgid bit stays: GNU chmod keeps it on a directory whatever mode is asked for.
    directory(name="/var/log/aide closed to others", path="/var/log/aide", group="adm", mode="2750")
    directory(name=f"{dirname(CHECK_SCRIPT)} exists", path=dirname(CHECK_SCRIPT), mode="755")
    validated_file(
        name="The nightly check: AIDE's findings as a line Monit alerts on",
        dest=CHECK_SCRIPT,
        content=render(CHECK_SCRIPT, config=AIDE_CONFIG, log=CHECK_LOG, report=CHECK_REPORT),
        validator="sh -n {}",
        mode="700",
    )
    hour, minute = (int(part) for part in settings.file_integrity_check_time.split(":"))
    services.nightly_job(CHECK_CRON, CHECK_SCRIPT, hour, minute)


@deploy("File integrity record")
def facts_read_first() -> compat.FactReads:
    """What ``record`` reads while it loads."""
    return [(AideDatabase, {})]


def record(mark_stale: bool = False) -> None:
    """
    AIDE's record of the host, written when this run changed anything on it (or the record is
    missing or stale). Apply it last.

    + mark_stale: a change follows in this run (the sudo lock, for a user who then cannot sudo):
      the next run writes the record again whatever it changes
    """
    if not settings_for(host, FileIntegritySettings).file_integrity:
        return
    name = "AIDE records the host's files" + (" (the sudo lock follows: next run again)" if mark_stale else "")
    if mark_stale or host.get_fact(AideDatabase) != "current":
        database_recorded(name=name, mark_stale=mark_stale)
    else:
        database_recorded(name=name, _if=any_changed(*compat.operations_so_far()))
