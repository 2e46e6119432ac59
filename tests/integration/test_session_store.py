"""The session store, proven from outside: the application (the PyPI redis client in the app
container, with its production config) reads and writes its sessions over TLS with its client
certificate; everything else the Redis security checklist refuses is refused, and the users
follow the data live."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from harness.backup_job import names_in, run_backup, sealed, stamps
from harness.certificates import client_of_another_ca
from harness.operator import ADMIN, DEPLOYS, HARDENING_BACKUP, REDIS_PERSISTENCE
from harness.redis_client import Attempt, attempt, install_client
from pyinfra_hardening import backups, session_store
from pyinfra_hardening.application import DEFAULT_CONFIG_DIR

CONFIG = f"{DEFAULT_CONFIG_DIR}/production.env"
OTHER_CA_FILES = ("/root/other-ca/client.key", "/root/other-ca/client.pem")


@pytest.fixture(scope="module")
def store(deployment):
    """The app container with the client installed, and the application's Redis settings."""
    app = deployment.machines["app"]
    for machine in (app, deployment.machines["backup"], deployment.outsider):
        install_client(machine)
    text = app.check(f"cat {CONFIG}")
    config = dict(line.split("=", 1) for line in text.splitlines() if line.startswith("REDIS_"))
    key, certificate = client_of_another_ca()
    app.check("mkdir -p -m 700 /root/other-ca")
    for path, content in zip(OTHER_CA_FILES, (key, certificate)):
        app.exec(f"cat > {path}", stdin=content)
    return app, config


def as_application(store, commands=(), **changes) -> Attempt:
    app, config = store
    spec = {
        "ca": config["REDIS_TLS_CA"],
        "certificate": config["REDIS_TLS_CERT"],
        "key": config["REDIS_TLS_KEY"],
        "user": config["REDIS_USER"],
        "password": config["REDIS_PASSWORD"],
        **changes,
    }
    return attempt(app, config["REDIS_HOST"], int(config["REDIS_PORT"]), tuple(commands), **spec)


def group_data_with(operator, folder, cache_servers: str):
    """The operator's group data, with ``cache_servers`` added to ``cache_servers.py``."""
    folder.mkdir()
    for source in operator.group_data.iterdir():
        (folder / source.name).write_text(source.read_text())
    with (folder / "cache_servers.py").open("a") as data:
        data.write(cache_servers)
    return folder


def admin(deployment, command: str) -> str:
    return deployment.machines["db"].check(f"{session_store.ADMIN_CLI} {command}").strip()


def test_the_application_reads_and_writes_its_sessions(deployment, store):
    _, config = store
    assert config["REDIS_HOST"] == deployment.machines["db"].private_ip and config["REDIS_PORT"] == "6379"
    assert config["REDIS_USER"] == "application"
    done = as_application(
        store, [("SET", "session:4711", "alice", "EX", "600"), ("GET", "session:4711"), ("DEL", "session:4711")]
    )
    assert done.connected, done.connect
    assert done.replies == ["ok:True", "ok:alice", "ok:1"]


@pytest.mark.parametrize(
    "command",
    [
        ("GET", "user:1"),  # outside its key pattern
        ("SET", "config", "x"),
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("KEYS", "*"),
        ("CONFIG", "SET", "dir", "/root/.ssh"),
        ("CONFIG", "GET", "*"),
        ("DEBUG", "SLEEP", "0"),
        ("MODULE", "LOAD", "/tmp/evil.so"),
        ("EVAL", "return 1", "0"),
        ("SCRIPT", "FLUSH"),
        ("FUNCTION", "FLUSH"),
        ("MIGRATE", "10.0.0.99", "6379", "session:1", "0", "1000"),
        ("ACL", "SETUSER", "evil", "on", ">pw", "+@all"),
        ("ACL", "LIST"),
        ("SUBSCRIBE", "news"),
        ("SHUTDOWN",),
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_the_application_user_is_refused_what_it_does_not_need(store, command):
    done = as_application(store, [command])
    assert done.connected, done.connect
    # DEBUG and MODULE are off for every user (enable-*-command no), before any ACL is asked;
    # CONFIG is gone for every user (renamed away by default).
    if command[0].lower() in session_store.SessionStoreSettings().redis_disabled_commands:
        assert done.replies[0].startswith(f"error:ResponseError: unknown command '{command[0]}'"), done.replies
    else:
        off = f"error:ResponseError: {command[0]} command not allowed."
        assert done.replies[0].startswith(("error:NoPermissionError", off)), done.replies


def test_a_plaintext_client_is_refused(store):
    done = as_application(store, plaintext=True)
    assert not done.connected, done  # the TLS port hangs up on a client that does not speak TLS
    assert "PONG" not in json.dumps(done.replies)


def test_tls_without_a_client_certificate_is_refused(store):
    done = as_application(store, certificate=None, key=None)
    assert not done.connected
    assert re.search(r"ConnectionError|SSL|certificate", done.connect), done.connect


def test_a_client_certificate_from_another_ca_is_refused(store):
    key, certificate = OTHER_CA_FILES
    done = as_application(store, key=key, certificate=certificate)
    assert not done.connected
    assert re.search(r"ConnectionError|SSL|certificate|unknown ca", done.connect, re.I), done.connect


def test_tls_1_2_is_refused_when_only_1_3_is_allowed(store):
    over_1_3 = as_application(store, tls_version="TLSv1_3")
    assert over_1_3.connected and over_1_3.replies[0].startswith("-NOAUTH"), over_1_3
    done = as_application(store, tls_version="TLSv1_2")
    assert not done.connected
    assert re.search(r"ConnectionError|SSL|version", done.connect, re.I), done.connect


@pytest.mark.parametrize("password", ["", "x", "application"])
def test_the_default_user_takes_no_password(store, password):
    done = as_application(store, user="default", password=password)
    assert not done.connected
    assert "AuthenticationError" in done.connect or "WRONGPASS" in done.connect, done.connect


def test_the_admin_user_is_refused_from_an_app_server(deployment, store):
    """Its password exists on the session store alone; a guess from an app server is refused."""
    done = as_application(store, user=session_store.ADMIN_USER, password="admin")
    assert "AuthenticationError" in done.connect or "WRONGPASS" in done.connect, done.connect


@pytest.mark.parametrize("where", ["outsider", "backup"])
def test_connections_from_elsewhere_are_dropped(deployment, where):
    machine = deployment.outsider if where == "outsider" else deployment.machines["backup"]
    done = attempt(machine, deployment.machines["db"].private_ip, 6379, plaintext=True, timeout=3)
    assert "timed out" in done.connect or "TimeoutError" in done.connect, done.connect


def test_files_are_private_to_redis_and_hold_no_clear_password(deployment, operator):
    db = deployment.machines["db"]
    modes = dict(
        line.split(" ", 1)
        for line in db.check(
            f"stat -c '%n %a %U:%G' {session_store.CONFIG} {session_store.ACL_FILE} {session_store.SERVER_KEY} "
            f"{session_store.DATA_DIR} {session_store.ADMIN_PASSWORD_FILE} {session_store.LOG_FILE}"
        ).splitlines()
    )
    assert modes[session_store.CONFIG] == "640 redis:redis"
    assert modes[session_store.ACL_FILE] == "640 redis:redis"
    assert modes[session_store.SERVER_KEY] == "400 redis:redis"
    assert modes[session_store.DATA_DIR] == "750 redis:redis"
    assert modes[session_store.ADMIN_PASSWORD_FILE] == "400 root:root"
    assert modes[session_store.LOG_FILE].split()[0][-1] == "0"  # nothing for others
    # Nothing of Redis's is open to others.
    assert db.check("find /etc/redis /var/lib/redis /var/log/redis -perm /o=rwx") == ""
    acl = db.check(f"cat {session_store.ACL_FILE}")
    for name in (session_store.APP_REDIS_PASSWORD, session_store.REDIS_ADMIN_PASSWORD):
        password = (operator.secrets / name).read_text().strip()
        assert password not in acl
        assert session_store.password_hash(password) in acl
    assert re.search(r"^user default off ", acl, re.M)
    assert db.check("ps -o user= -C redis-server").split() == ["redis"]
    assert db.check("getent passwd redis | cut -d: -f7").strip() == "/usr/sbin/nologin"
    assert "/var/log/redis/redis-server*.log" in db.check("cat /etc/logrotate.d/redis-server")
    assert db.check("command -v logrotate").strip()


def test_the_running_config_is_the_checklists(deployment):
    """The server runs the file the deploy wrote (it started after the file was written), the
    file says what the checklist asks, and nobody, the admin included, can change or read the
    running config (CONFIG is gone)."""
    db = deployment.machines["db"]
    persistence = session_store.PERSISTENCE[REDIS_PERSISTENCE[deployment.release]]
    lines = db.check(f"cat {session_store.CONFIG}").splitlines()
    for line in (
        "port 0",
        "tls-port 6379",
        f"bind {db.private_ip}",
        "protected-mode yes",
        "tls-auth-clients yes",
        'tls-protocols "TLSv1.3"',
        "tls-prefer-server-ciphers yes",
        "tls-replication yes",
        f"aclfile {session_store.ACL_FILE}",
        "enable-debug-command no",
        "enable-module-command no",
        "enable-protected-configs no",
        f"logfile {session_store.LOG_FILE}",
        f"save {persistence['save']}",
        f"appendonly {persistence['appendonly']}",
        'rename-command CONFIG ""',
    ):
        assert line in lines, line
    assert not [line for line in lines if line.startswith("requirepass")]
    info = dict(line.split(":", 1) for line in admin(deployment, "INFO server").splitlines() if ":" in line)
    assert info["config_file"].strip() == session_store.CONFIG
    written = int(db.check(f"stat -c %Y {session_store.CONFIG}"))
    started = int(db.check("date +%s")) - int(info["uptime_in_seconds"])
    assert started >= written - 1, (started, written)
    refused = db.exec(f"{session_store.ADMIN_CLI} CONFIG GET port")
    assert "unknown command 'CONFIG'" in refused.stdout + refused.stderr, refused
    assert admin(deployment, "ACL WHOAMI") == session_store.ADMIN_USER
    # Redis listens on the private address's TLS port alone: no plaintext port, no other address.
    listening = [line.split()[3] for line in db.check("ss -Htln").splitlines()]
    assert f"{db.private_ip}:6379" in listening
    assert [address for address in listening if address.endswith(":6379")] == [f"{db.private_ip}:6379"]


def test_a_broken_candidate_never_replaces_the_live_file(deployment, operator, tmp_path):
    """A rule pydantic cannot know is wrong (no such command): the throwaway server refuses the
    candidate ACL file, the run fails, and the live file and users stay."""
    db = deployment.machines["db"]
    before = db.check(f"sha256sum {session_store.ACL_FILE}")
    group_data = group_data_with(
        operator, tmp_path / "group_data", "redis_app_commands = ['+@read', '+nosuchcommand']\n"
    )
    run = operator.pyinfra(deployment.admin_inventory, DEPLOYS["cache"], group_data=group_data)
    assert run.returncode != 0 and run.failed, run.output
    assert "failed validation; the live file was left as it was" in run.output
    assert db.check(f"sha256sum {session_store.ACL_FILE}") == before
    assert db.check(f"ls {session_store.ACL_FILE}.hardening-candidate 2>/dev/null || true") == ""


def test_users_follow_the_data_live_without_a_restart(deployment, operator, store, tmp_path):
    """A permission added in data changes that user alone, in the running server; a user added
    by hand is deleted; putting the data back puts the user back."""
    run_id = admin(deployment, "INFO server")
    run_id = re.search(r"run_id:(\w+)", run_id).group(1)
    admin_line = [line for line in admin(deployment, "ACL LIST").splitlines() if line.startswith("user admin ")]
    admin(deployment, "ACL SETUSER intruder on >let-me-in ~* +@all")
    assert not as_application(store, [("EVAL", "return 1", "0")]).replies[0].startswith("ok")

    commands = ["+@read", "+@write", "+@keyspace", "+@connection", "+@transaction", "+@scripting"]
    group_data = group_data_with(operator, tmp_path / "group_data", f"redis_app_commands = {commands!r}\n")
    changed = operator.pyinfra(deployment.admin_inventory, DEPLOYS["cache"], group_data=group_data)
    assert changed.returncode == 0, changed.output
    db = deployment.machines["db"].name
    assert sorted(name.rsplit(" | ", 1)[-1] for name in changed.changed[db]) == sorted(
        [
            "Redis's users, passwords hashed (ACL file)",
            "Redis's live users are those of the ACL file",
            "AIDE records the host's files",  # a run that changed the host ends with AIDE's record
        ]
    ), changed.changed
    assert as_application(store, [("EVAL", "return 1", "0")]).replies == ["ok:1"]
    users = admin(deployment, "ACL LIST").splitlines()
    assert [line for line in users if line.startswith("user admin ")] == admin_line
    assert not [line for line in users if line.startswith("user intruder ")]
    assert re.search(r"run_id:(\w+)", admin(deployment, "INFO server")).group(1) == run_id

    back = operator.pyinfra(deployment.admin_inventory, DEPLOYS["cache"])
    assert back.returncode == 0, back.output
    assert as_application(store, [("EVAL", "return 1", "0")]).replies[0].startswith("error:NoPermissionError")
    again = operator.pyinfra(deployment.admin_inventory, DEPLOYS["cache"])
    assert again.changed == {}, again.changed


def test_the_sessions_are_in_the_nightly_backup_and_come_back_from_it(deployment, operator, store, tmp_path):
    """The nightly job takes a snapshot of the running Redis beside the database dump; the
    operator fetches it from the backup server, decrypts it on their machine, and
    ``redis-restore`` puts it back: the session written before the backup is there again, the
    one written after it is gone, and both stay so across a restart (the store's own files hold
    the restored data, snapshots or an append-only file)."""
    db, backup = deployment.machines["db"], deployment.machines["backup"]
    assert as_application(store, [("SET", "session:kept", "carol", "EX", "86400")]).replies == ["ok:True"]
    source = backups.file_source(db.name, backups.RDB)
    before = stamps(names_in(db, backups.BACKUP_DIR), source)
    job = run_backup(db)
    assert job.returncode == 0, job.stderr
    [stamp] = [stamp for stamp in stamps(names_in(db, backups.BACKUP_DIR), source) if stamp not in before]
    pair = [f"{stamp}{backups.archive_suffix(backups.RDB)}", f"{stamp}.passphrase.enc"]
    assert sealed(backup, pair)
    assert db.exec(f"zcat -f {backups.BACKUP_DIR}/{pair[0]} | grep -c carol").stdout.strip() == "0"

    fetched = subprocess.run(
        [HARDENING_BACKUP, "fetch", str(deployment.admin_inventory), backup.name, "--user", ADMIN]
        + ["--out", str(tmp_path / "restore"), "--session-store", db.name],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.split() == ["fetched", str(tmp_path / "restore" / pair[0]), "fetched"] + [
        str(tmp_path / "restore" / pair[1])
    ]
    snapshot = tmp_path / "dump.rdb"
    decrypted = subprocess.run(
        [HARDENING_BACKUP, "restore", "--private-key", str(operator.backup_private_key)]
        + [str(tmp_path / "restore" / pair[0]), "--rdb-out", str(snapshot)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert decrypted.returncode == 0, decrypted.stderr
    assert snapshot.read_bytes().startswith(b"REDIS") and snapshot.stat().st_mode & 0o777 == 0o600

    assert as_application(store, [("DEL", "session:kept"), ("SET", "session:later", "dave")]).replies == [
        "ok:1",
        "ok:True",
    ]
    subprocess.run(["docker", "cp", str(snapshot), f"{db.container.id}:/root/dump.rdb"], check=True)
    db.check("printf 'not a snapshot' > /root/junk.rdb")
    junk = db.exec(f"{session_store.RESTORE_SCRIPT} /root/junk.rdb")
    assert junk.returncode != 0 and "does not load as Redis's data; nothing was changed" in junk.stderr
    assert as_application(store, [("GET", "session:later")]).replies == ["ok:dave"]

    restored = db.exec(f"{session_store.RESTORE_SCRIPT} /root/dump.rdb")
    assert restored.returncode == 0, restored.stderr
    assert "what it held before is in /var/lib/redis/before-restore-" in restored.stdout
    for moment in ("restored", "after a restart"):
        assert as_application(store, [("GET", "session:kept"), ("GET", "session:later")]).replies == [
            "ok:carol",
            "ok:None",
        ], moment
        db.check(f"systemctl restart {session_store.SERVICE}")
    assert db.check("find /var/lib/redis -perm /o=rwx") == ""
    as_application(store, [("DEL", "session:kept")])
