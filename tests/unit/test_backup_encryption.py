"""The backup script's encryption and the restore command's decryption, against each other, with
this machine's bash and openssl and a stand-in for mariadb-dump (no container needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pyinfra_hardening import backup_cli, backups

DUMP = "-- MariaDB dump\nINSERT INTO `customers` VALUES (1,'alice@example.com','likes green tea');\n"


# What a stand-in for `redis-admin --rdb -` prints: an RDB file's start, then some bytes.
SNAPSHOT = b"REDIS0011\xfa\tredis-ver\x057.0.15session:4711 alice\xff"


@pytest.fixture
def backup_host(tmp_path, backup_key_pair, monkeypatch):
    """The script as the deploy renders it for a host that is a database server and a session
    store, paths moved into ``tmp_path``, with a mariadb-dump that prints DUMP and a redis-admin
    that prints SNAPSHOT (each failing when asked to), and no backup servers to copy to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, output in (("mariadb-dump", DUMP.encode()), ("redis-admin", SNAPSHOT)):
        (tmp_path / f"{name}.out").write_bytes(output)
        stand_in = bin_dir / name
        stand_in.write_text(
            f"#!/bin/sh\n[ -e {tmp_path}/{name}-fails ] && {{ echo 'cannot connect' >&2; exit 2; }}\n"
            f"cat {tmp_path}/{name}.out\n"
        )
        stand_in.chmod(0o755)
    for name, path in (
        ("BACKUP_DIR", "out"),
        ("PUBLIC_KEY", backup_key_pair[1]),
        ("SSH_KEY", "key"),
        ("KNOWN_HOSTS", "known_hosts"),
        ("LOG_FILE", "db-backup.log"),
    ):
        monkeypatch.setattr(backups, name, str(tmp_path / path))
    plan = backups.Backups(
        (
            backups.BackupPart("db1", backups.SQL, "the application database", "mariadb-dump application"),
            backups.BackupPart("db1.redis", backups.RDB, "Redis's data", "redis-admin --rdb -"),
        ),
        public_key=backup_key_pair[1],
        time=(0, 1),
        keep=2,
        destinations=(),
        ssh_port=22,
    )
    script = tmp_path / "db-backup"
    script.write_text(backups.backup_script(plan))
    script.chmod(0o700)

    def run() -> subprocess.CompletedProcess:
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)

    return tmp_path, run


def pairs(folder: Path, kind: str = backups.SQL) -> list[Path]:
    return sorted(folder.glob(f"*{backups.archive_suffix(kind)}"))


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
    (folder / "mariadb-dump-fails").touch()
    failed = run()
    message = "FAILED: dump or encryption of the application database failed"
    assert failed.returncode != 0 and message in failed.stderr
    assert list((folder / "out").iterdir()) == []
    assert message in (folder / "db-backup.log").read_text()


def test_a_failed_snapshot_exits_non_zero_and_keeps_only_the_whole_sql_pair(backup_host):
    folder, run = backup_host
    (folder / "redis-admin-fails").touch()
    failed = run()
    assert failed.returncode != 0 and "FAILED: dump or encryption of Redis's data failed" in failed.stderr
    assert pairs(folder / "out", backups.RDB) == [] and len(pairs(folder / "out")) == 1
    assert not list((folder / "out").glob("db1.redis_*")) and not list((folder / "out").glob("*.partial"))


def test_the_script_keeps_the_newest_pairs(backup_host):
    folder, run = backup_host
    for _ in range(4):
        assert run().returncode == 0
    names = sorted(path.name for path in (folder / "out").iterdir())
    # keep=2 of each: two SQL archives and two snapshots, each with its passphrase file.
    assert len(names) == 8 and len(pairs(folder / "out")) == 2 and len(pairs(folder / "out", backups.RDB)) == 2
    assert len([name for name in names if name.startswith("db1.redis_")]) == 4


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


def test_restore_writes_a_redis_snapshot_for_the_operator_only(backup_host, backup_key_pair, tmp_path):
    folder, run = backup_host
    assert run().returncode == 0
    [archive] = pairs(folder / "out", backups.RDB)
    assert archive.name.startswith("db1.redis_") and b"alice" not in archive.read_bytes()
    out = tmp_path / "dump.rdb"
    key = str(backup_key_pair[0])
    assert backup_cli.main(["restore", "--private-key", key, str(archive), "--rdb-out", str(out)]) == 0
    assert out.read_bytes() == SNAPSHOT and out.stat().st_mode & 0o777 == 0o600


def test_restore_refuses_a_target_of_the_other_kind(backup_host, backup_key_pair, tmp_path, capsys):
    folder, run = backup_host
    assert run().returncode == 0
    [snapshot], [sql] = pairs(folder / "out", backups.RDB), pairs(folder / "out")
    key = str(backup_key_pair[0])
    assert backup_cli.main(["restore", "--private-key", key, str(snapshot), "--sql-out", str(tmp_path / "x")]) == 1
    assert "is a Redis snapshot: restore it with --rdb-out FILE" in capsys.readouterr().err
    assert backup_cli.main(["restore", "--private-key", key, str(sql), "--rdb-out", str(tmp_path / "x")]) == 1
    assert "is SQL: restore it with --database NAME or --sql-out FILE" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_fetch_picks_the_newest_complete_pair_of_the_kind_and_host_asked_for():
    names = [
        "db1_20261101T000100Z.sql.gz.enc",
        "db1_20261101T000100Z.passphrase.enc",
        "db1_20261102T000100Z.sql.gz.enc",  # its passphrase never arrived
        "db1.redis_20261101T000100Z.rdb.gz.enc",
        "db1.redis_20261101T000100Z.passphrase.enc",
        "cache1.redis_20261103T000100Z.rdb.gz.enc",
        "cache1.redis_20261103T000100Z.passphrase.enc",
    ]
    assert backup_cli.newest_pair(names, None, backups.SQL)[0] == "db1_20261101T000100Z.sql.gz.enc"
    assert backup_cli.newest_pair(names, "db1", backups.RDB)[0] == "db1.redis_20261101T000100Z.rdb.gz.enc"
    assert backup_cli.newest_pair(names, None, backups.RDB)[0] == "cache1.redis_20261103T000100Z.rdb.gz.enc"
    with pytest.raises(backup_cli.RestoreError, match="no complete Redis snapshot of app1"):
        backup_cli.newest_pair(names, "app1", backups.RDB)
