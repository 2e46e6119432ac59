"""The backup script's encryption and the restore command's decryption, against each other, with
this machine's bash and openssl and a stand-in for mariadb-dump (no container needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pyinfra_hardening import backup_cli, backups
from pyinfra_hardening.managed_files import render

DUMP = "-- MariaDB dump\nINSERT INTO `customers` VALUES (1,'alice@example.com','likes green tea');\n"


@pytest.fixture
def backup_host(tmp_path, backup_key_pair):
    """The rendered script, paths moved into ``tmp_path``, with a mariadb-dump that prints DUMP
    (or fails when asked to) and no backup servers to copy to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_dump = bin_dir / "mariadb-dump"
    fake_dump.write_text(
        f"#!/bin/sh\n[ -e {tmp_path}/dump-fails ] && {{ echo 'cannot connect' >&2; exit 2; }}\ncat <<'EOF'\n{DUMP}EOF\n"
    )
    fake_dump.chmod(0o755)
    (tmp_path / "dump.cnf").write_text("[client]\n")
    script = tmp_path / "db-backup"
    script.write_text(
        render(
            backups.BACKUP_SCRIPT,
            database="application",
            backup_dir=tmp_path / "out",
            dump_options=tmp_path / "dump.cnf",
            public_key=backup_key_pair[1],
            ssh_key=tmp_path / "key",
            known_hosts=tmp_path / "known_hosts",
            keep=2,
            iterations=backup_cli.PBKDF2_ITERATIONS,
            destinations=[],
            ssh_port=22,
            source="db1",
            account=backups.ACCOUNT,
            log_file=tmp_path / "db-backup.log",
        )
    )
    script.chmod(0o700)

    def run() -> subprocess.CompletedProcess:
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)

    return tmp_path, run


def pairs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sql.gz.enc"))


def test_what_the_script_encrypts_the_restore_command_decrypts(backup_host, backup_key_pair):
    folder, run = backup_host
    assert run().returncode == 0
    [archive] = pairs(folder / "out")
    assert archive.name.startswith("db1_") and backup_cli.passphrase_file_for(archive).exists()
    assert b"alice@example.com" not in archive.read_bytes()

    key = backup_cli.load_private_key(backup_key_pair[0])
    sealed = backup_cli.passphrase_file_for(archive).read_bytes()
    assert backup_cli.decrypt_archive(key, archive.read_bytes(), sealed).decode() == DUMP


def test_a_truncated_archive_is_refused(backup_host, backup_key_pair):
    folder, run = backup_host
    assert run().returncode == 0
    [archive] = pairs(folder / "out")
    key = backup_cli.load_private_key(backup_key_pair[0])
    sealed = backup_cli.passphrase_file_for(archive).read_bytes()
    with pytest.raises(backup_cli.RestoreError, match="incomplete copy"):
        backup_cli.decrypt_archive(key, archive.read_bytes()[:-16], sealed)


def test_a_failed_dump_exits_non_zero_and_leaves_nothing(backup_host):
    folder, run = backup_host
    (folder / "dump-fails").touch()
    failed = run()
    assert failed.returncode != 0 and "FAILED: dump or encryption of application failed" in failed.stderr
    assert list((folder / "out").iterdir()) == []
    assert "FAILED: dump or encryption of application failed" in (folder / "db-backup.log").read_text()


def test_the_script_keeps_the_newest_pairs(backup_host):
    folder, run = backup_host
    for _ in range(4):
        assert run().returncode == 0
    names = sorted(path.name for path in (folder / "out").iterdir())
    assert len(names) == 4 and len(pairs(folder / "out")) == 2  # keep=2: two archives, two passphrases


def test_restore_sql_goes_into_the_named_database_only():
    sql = backup_cli.restore_sql("restored", b"INSERT 1;\n").decode()
    assert sql.startswith("CREATE DATABASE IF NOT EXISTS `restored`") and "USE `restored`;\nINSERT 1;" in sql
    with pytest.raises(backup_cli.RestoreError):
        backup_cli.restore_sql("x`; DROP DATABASE y; --", b"")


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    private, public = tmp_path / "k.pem", tmp_path / "keys" / "k.pub.pem"
    assert (
        backup_cli.main(["keygen", "--private-key", str(private), "--public-key", str(public), "--bits", "3072"]) == 0
    )
    assert private.stat().st_mode & 0o777 == 0o600
    assert b"PUBLIC KEY" in public.read_bytes() and b"PRIVATE" not in public.read_bytes()
    assert backup_cli.main(["keygen", "--private-key", str(private), "--public-key", str(public)]) == 1


def test_a_protected_private_key_asks_for_its_passphrase(tmp_path, monkeypatch):
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    backup_cli.generate_key_pair(private, public, bits=3072, passphrase=b"Long-Key-Passphrase-9")
    monkeypatch.setattr(backup_cli.getpass, "getpass", lambda prompt: "Long-Key-Passphrase-9")
    assert backup_cli.load_private_key(private).key_size == 3072
    monkeypatch.setattr(backup_cli.getpass, "getpass", lambda prompt: "wrong")
    with pytest.raises(backup_cli.RestoreError):
        backup_cli.load_private_key(private)


def test_restore_writes_the_sql_for_the_operator_only(backup_host, backup_key_pair, tmp_path):
    folder, run = backup_host
    assert run().returncode == 0
    [archive] = pairs(folder / "out")
    out = tmp_path / "restore.sql"
    assert (
        backup_cli.main(["restore", "--private-key", str(backup_key_pair[0]), str(archive), "--sql-out", str(out)]) == 0
    )
    assert out.read_text() == DUMP and out.stat().st_mode & 0o777 == 0o600
