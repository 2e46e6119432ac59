"""Nightly encrypted backups (guide 3.11.2): the job run as cron runs it, the pair on the backup
server, a restore with the operator's private key, rotation, and failures that are loud."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from harness.backup_job import names_in, run_backup, sealed, stamps
from harness.containers import Machine
from harness.operator import ADMIN, HARDENING_BACKUP
from harness.operator import DB_BACKUP_KEEP as DB_KEEP
from harness.operator import OFFSITE_BACKUP_KEEP as OFFSITE_KEEP
from harness.ssh import key_only
from pyinfra_hardening import backups
from pyinfra_hardening.backup_cli import generate_key_pair

SEEDED = [("1", "alice@example.com", "likes green tea"), ("2", "bob@example.com", "allergic to cats")]


@pytest.fixture(scope="module")
def seeded(deployment):
    db = deployment.machines["db"]
    values = ", ".join(f"({id_}, '{email}', '{note}')" for id_, email, note in SEEDED)
    db.check(
        'mariadb application -e "CREATE TABLE IF NOT EXISTS customers '
        "(id INT PRIMARY KEY, email VARCHAR(100), note TEXT); "
        f'DELETE FROM customers; INSERT INTO customers VALUES {values}"'
    )
    return db


@pytest.fixture(scope="module")
def first_backup(deployment, seeded):
    """One run of the job; the names of the pair it made."""
    db, backup = seeded, deployment.machines["backup"]
    before = stamps(names_in(db, backups.BACKUP_DIR), db.name)
    result = run_backup(db)
    assert result.returncode == 0, result.stderr
    new = [stamp for stamp in stamps(names_in(db, backups.BACKUP_DIR), db.name) if stamp not in before]
    assert len(new) == 1
    pair = [f"{new[0]}.sql.gz.enc", f"{new[0]}.passphrase.enc"]
    assert sealed(backup, pair), backup.exec(f"ls -la {backups.INCOMING}").stdout
    return pair


def fetch(machine: Machine, names: list[str], folder: Path, directory: str) -> list[Path]:
    paths = []
    for name in names:
        (folder / name).write_bytes(machine.read_bytes(f"{directory}/{name}"))
        paths.append(folder / name)
    return paths


def test_the_backup_arrives_offsite_and_restores_exactly_the_seeded_rows(deployment, operator, first_backup, tmp_path):
    """Fetched from the backup server as the operator does (an admin's login with TOTP, sudo
    answered from the store), decrypted on the operator's side, restored into a new database."""
    db, backup = deployment.machines["db"], deployment.machines["backup"]
    fetched = subprocess.run(
        [
            HARDENING_BACKUP,
            "fetch",
            str(deployment.admin_inventory),
            backup.name,
            "--user",
            ADMIN,
            "--out",
            str(tmp_path / "restore"),
            "--database-server",
            db.name,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fetched.returncode == 0, fetched.stderr
    archive, passphrase = (tmp_path / "restore" / name for name in first_backup)
    for path, name in ((archive, first_backup[0]), (passphrase, first_backup[1])):
        assert path.read_bytes() == backup.read_bytes(f"{backups.INCOMING}/{name}")
        assert path.stat().st_mode & 0o777 == 0o600
    assert (
        operator.secrets.joinpath(f"admin-{ADMIN}.password").read_text().strip() not in fetched.stdout + fetched.stderr
    )
    db.check("mariadb -e 'DROP DATABASE IF EXISTS restored'")

    restore = operator.restore(archive, db, "restored")

    assert restore.returncode == 0, restore.stderr
    rows = db.check("mariadb -N restored -e 'SELECT id, email, note FROM customers ORDER BY id'")
    assert [tuple(line.split("\t")) for line in rows.splitlines()] == SEEDED


def test_the_backup_files_are_unreadable_without_the_private_key(deployment, first_backup, tmp_path):
    db, backup = deployment.machines["db"], deployment.machines["backup"]
    for machine, directory in ((db, backups.BACKUP_DIR), (backup, backups.INCOMING)):
        for path in fetch(machine, first_backup, tmp_path, directory):
            data = path.read_bytes()
            assert not any(secret.encode() in data for row in SEEDED for secret in row[1:])
        assert machine.exec(f"gzip -t {directory}/{first_backup[0]}").returncode != 0
    assert db.check(f"stat -c '%U %a' {backups.BACKUP_DIR} {backups.BACKUP_DIR}/{first_backup[0]}").split() == [
        "root",
        "700",
        "root",
        "600",
    ]

    other_private, other_public = tmp_path / "other.pem", tmp_path / "other.pub.pem"
    generate_key_pair(other_private, other_public, bits=3072)
    wrong_key = subprocess.run(
        [
            HARDENING_BACKUP,
            "restore",
            "--private-key",
            str(other_private),
            str(tmp_path / first_backup[0]),
            "--sql-out",
            str(tmp_path / "out.sql"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong_key.returncode != 0 and "does not open with this private key" in wrong_key.stderr
    assert not (tmp_path / "out.sql").exists()


def test_the_backup_account_can_only_add_files(deployment, first_backup):
    db, backup = deployment.machines["db"], deployment.machines["backup"]
    ssh = f"-i {backups.SSH_KEY} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile={backups.KNOWN_HOSTS}"
    target = f"{backups.ACCOUNT}@{backup.private_ip}"
    shell = db.exec(f"ssh {ssh} {target} id")
    assert shell.returncode != 0 and "uid=" not in shell.stdout
    download = db.exec(f"scp {ssh} {target}:{first_backup[0]} /tmp/taken")
    assert download.returncode != 0 and db.exec("test -e /tmp/taken").returncode != 0
    for command in ("ls", f"rm {first_backup[0]}", f"rename {first_backup[0]} x"):
        db.exec(f"echo '{command}' | sftp {ssh} -b - {target}")
    assert sealed(backup, first_backup)
    overwrite = db.exec(f"echo junk > /tmp/{first_backup[0]} && scp {ssh} /tmp/{first_backup[0]} {target}:")
    assert overwrite.returncode != 0
    assert backup.check(f"sha256sum < {backups.INCOMING}/{first_backup[0]}") == db.check(
        f"sha256sum < {backups.BACKUP_DIR}/{first_backup[0]}"
    )
    # The account has no password and no shell, on the host itself either.
    assert backup.check(f"getent passwd {backups.ACCOUNT}").strip().endswith(":/usr/sbin/nologin")


def test_the_backup_account_takes_only_the_database_servers_key_and_only_from_them(deployment, operator):
    backup = deployment.machines["backup"]
    # The operator's address may reach sshd (admin_cidrs): the key's from= list still refuses it.
    for key in (operator.admin_key, operator.secrets / "backup-ssh-key"):
        with pytest.raises(paramiko.AuthenticationException):
            key_only(backup, backups.ACCOUNT, key)


def test_the_private_key_never_reaches_a_server(deployment, operator):
    private_lines = operator.backup_private_key.read_text().splitlines()[1:-1]
    for machine in deployment.machines.values():
        found = machine.exec(f"grep -rlF -e {private_lines[5]} /etc /root /var /srv /usr/local /tmp /home")
        assert found.stdout == "", f"part of the private key on {machine.name}: {found.stdout}"
    public_body = "".join(operator.backup_public_key.read_text().splitlines()[1:-1])
    assert public_body in "".join(deployment.machines["db"].check(f"cat {backups.PUBLIC_KEY}").splitlines())


def test_the_dump_password_never_shows_in_the_process_list(deployment, operator, seeded):
    db = seeded
    password = (operator.secrets / "backup-dump-password").read_text().strip()
    db.check(
        "rm -f /tmp/ps.log; setsid sh -c 'while [ ! -e /tmp/ps.stop ]; do ps -eo args >> /tmp/ps.log; done' "
        ">/dev/null 2>&1 </dev/null &"
    )
    try:
        assert run_backup(db).returncode == 0
    finally:
        db.check("touch /tmp/ps.stop; sleep 0.5; rm -f /tmp/ps.stop")
    processes = db.read_bytes("/tmp/ps.log").decode()
    assert "mariadb-dump --defaults-extra-file=" in processes, "the sampling never saw the dump run"
    assert password not in processes and "-pass pass:" not in processes


def test_rotation_keeps_the_newest_backups_on_both_servers(deployment, seeded):
    db, backup = seeded, deployment.machines["backup"]
    started = time.time()
    made = []
    for _ in range(OFFSITE_KEEP + 3):
        before = set(stamps(names_in(db, backups.BACKUP_DIR), db.name))
        assert run_backup(db).returncode == 0
        made += [stamp for stamp in stamps(names_in(db, backups.BACKUP_DIR), db.name) if stamp not in before]
    assert len(made) == OFFSITE_KEEP + 3

    assert stamps(names_in(db, backups.BACKUP_DIR), db.name) == made[-DB_KEEP:]
    # Each kind keeps its newest: the database's pairs and the session store's (this machine's too).
    assert len(names_in(db, backups.BACKUP_DIR)) == 2 * 2 * DB_KEEP
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and stamps(names_in(backup, backups.INCOMING), db.name) != made[-OFFSITE_KEEP:]:
        time.sleep(0.5)
    offsite = names_in(backup, backups.INCOMING)
    assert stamps(offsite, db.name) == made[-OFFSITE_KEEP:]
    assert all(f"{stamp}.sql.gz.enc" in offsite for stamp in made[-OFFSITE_KEEP:])
    assert len(stamps(offsite, backups.file_source(db.name, backups.RDB))) == OFFSITE_KEEP
    # The backup account's nightly logins are expected: no login alert for them.
    assert deployment.sinks.wait_for("mail", [f"for {backups.ACCOUNT} from"], since=started, timeout=10) is None


def test_a_failed_dump_exits_non_zero_is_logged_and_leaves_no_file(deployment, seeded):
    db = seeded
    before = names_in(db, backups.BACKUP_DIR)
    db.check("systemctl stop mariadb")
    try:
        failed = run_backup(db)
    finally:
        db.check("systemctl start mariadb")
    assert failed.returncode != 0 and "FAILED" in failed.stderr
    assert "FAILED: dump or encryption" in db.check("journalctl -t db-backup --since '-2min' -o cat")
    assert names_in(db, backups.BACKUP_DIR) == before


def test_a_failed_copy_exits_non_zero_is_logged_and_keeps_the_local_backup(deployment, seeded):
    db, backup = seeded, deployment.machines["backup"]
    before_offsite = names_in(backup, backups.INCOMING)
    cut = f"OUTPUT -d {backup.private_ip} -p tcp --dport 22 -j REJECT"
    started = time.time()
    db.check(f"iptables -I {cut}")
    try:
        failed = run_backup(db)
    finally:
        db.check(f"iptables -D {cut}")
    assert failed.returncode != 0 and "FAILED: copy of" in failed.stderr
    assert "FAILED: copy of" in db.check("journalctl -t db-backup --since '-2min' -o cat")
    newest = stamps(names_in(db, backups.BACKUP_DIR), db.name)[-1]
    assert f"{newest}.sql.gz.enc" in names_in(db, backups.BACKUP_DIR)
    assert names_in(backup, backups.INCOMING) == before_offsite
    # Monit on the database server mails the failure.
    assert deployment.sinks.wait_for("mail", ["FAILED: copy of", "From: monit@db"], since=started) is not None
