"""`make demo`: harden three throwaway containers end to end, dry-run diff first.

Starts app, db (the session store too) and backup containers that look like a provider's fresh VMs (a root password,
passwordless sudo) and an outsider on the same network (with a mail relay), shows what the
deploys would change, applies them, re-runs them to show nothing is left to change, then checks
from outside what is now enforced. The containers are removed at the end; pass --keep to leave
them running.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import paramiko

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from harness import lynis  # noqa: E402
from harness.containers import KEPT, RUN_OWNER, Fleet, remove_leftovers  # noqa: E402
from harness.operator import ADMIN, ALERT_EMAIL, APP_TLS, DEPLOYS, ROLE_GROUPS, Operator  # noqa: E402
from harness.provider import PROVIDER_ROOT_PASSWORD, PROVIDER_USER, act_like_a_provider_image  # noqa: E402
from harness.redis_client import attempt, install_client  # noqa: E402
from harness.sinks import SMTP_PORT, Sinks, send_alerts_to, start_sinks  # noqa: E402
from harness.ssh import key_only, login  # noqa: E402
from harness.tls_client import https_headers, served_certificate  # noqa: E402
from pyinfra_hardening import fleet_ca  # noqa: E402
from pyinfra_hardening.application import DEFAULT_CONFIG_DIR  # noqa: E402
from pyinfra_hardening.fleet import CACHE_SERVERS  # noqa: E402


def banner(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def stream_pyinfra(operator: Operator, inventory: Path, *deploys: str, args: tuple[str, ...]) -> None:
    command, env = operator.pyinfra_command(inventory, *deploys, args=args)
    subprocess.run(command, cwd=REPO, env=env, check=True)


def refused(attempt) -> bool:
    try:
        attempt().close()
    except paramiko.AuthenticationException:
        return True
    return False


def enforced(operator: Operator, machines, outsider, sinks: Sinks, admin_password: str) -> list[tuple[str, bool]]:
    """Each control, checked from outside the way a user or an attacker would meet it."""
    app, db, backup = machines["app"], machines["db"], machines["backup"]
    logged_in_at = time.time()
    app.serve_http(3000)  # a stand-in for the application, behind the TLS front
    with login(app, ADMIN, key=operator.admin_key, totp_secret=operator.totp_secret(ADMIN)) as session:
        key_login = session.run("true").status == 0
        sudo_without_password = session.run("sudo -n true").status == 0
        sudo_with_password = session.run("sudo -S -k -p '' true", stdin=admin_password + "\n").status == 0
    key_alone, _ = key_only(app, ADMIN, operator.admin_key)
    su_root = db.exec("su -c true root", user=PROVIDER_USER, stdin=PROVIDER_ROOT_PASSWORD + "\n")
    db.check("useradd -m demo && echo 'demo:Demo-Start-2024' | chpasswd")
    weak = db.exec("passwd", user="demo", stdin="Demo-Start-2024\n" + "password1\n" * 6)
    app_user = app.check("getent passwd application").strip().split(":")
    db.check(
        'mariadb application -e "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT); '
        "INSERT INTO notes VALUES (1, 'first note'), (2, 'second note')\""
    )
    app_reads = operator.app_query(app, db, "SELECT COUNT(*) FROM notes").stdout.strip() == "2"
    app_drops = operator.app_query(app, db, "DROP TABLE notes").returncode == 0
    over_tls = operator.app_query(app, db, "SHOW SESSION STATUS LIKE 'Ssl_version'").stdout.split()
    plaintext = operator.app_query(app, db, "SELECT 1", tls=None)
    config_private = (
        "Permission denied" in app.exec(f"runuser -u nobody -- cat {DEFAULT_CONFIG_DIR}/production.env").stderr
    )
    root_over_tls = app.exec(
        f"mariadb --ssl-ca={APP_TLS[0]} --ssl-verify-server-cert -h {db.private_ip} -u root -e 'SELECT 1'"
    )
    backup_ran = db.exec("/usr/local/sbin/db-backup").returncode == 0
    restored = restore_newest_backup(operator, db, backup)
    # The front's certificate is the fleet CA's (tls_certificates = 'internal', the default), for
    # the app server's address: verified here as a browser that trusts that CA would.
    fleet_ca_file = operator.home / "fleet-ca.pem"
    fleet_ca_file.write_text(fleet_ca.trust_bundle(operator.ca_keys))
    leaf = served_certificate(app.private_ip, app.private_ip, fleet_ca_file)
    redirect = outsider.http_get(app.private_ip, 80, "/login?next=/")
    hsts = https_headers(app.private_ip, app.private_ip, fleet_ca_file).get("strict-transport-security")
    sessions, plaintext_redis = session_store_attempts(app)
    return [
        (f"{ADMIN} logs in with her SSH key and a TOTP code", key_login),
        (f"{ADMIN}'s key alone is not enough", not key_alone),
        (f"{ADMIN}'s password alone is refused", refused(lambda: login(app, ADMIN, password=admin_password))),
        (
            "root is refused, even with the key that worked before",
            refused(lambda: login(app, "root", key=operator.root_key)),
        ),
        (f"{ADMIN}'s sudo asks for her password (sudo -n refused)", not sudo_without_password),
        (f"{ADMIN}'s sudo works with her password", sudo_with_password),
        ("the provider's user lost passwordless sudo", app.exec("sudo -n true", user=PROVIDER_USER).returncode != 0),
        ("root's password is locked (su with the old one refused)", su_root.returncode != 0),
        ("a weak new password ('password1') is refused by PAM", weak.returncode != 0),
        ("the application user has no shell and no home", app_user[5:] == ["/nonexistent", "/usr/sbin/nologin"]),
        ("the clock is kept by systemd-timesyncd", db.exec("systemctl is-enabled systemd-timesyncd").returncode == 0),
        ("the app server's database account reads the application's data", app_reads),
        ("... but cannot drop a table", not app_drops),
        (
            "... over TLS 1.3, the server verified against the fleet CA, with its client certificate",
            over_tls == ["Ssl_version", "TLSv1.3"],
        ),
        (
            "a plaintext connection to the database is refused",
            any(words in plaintext.stderr for words in ("Access denied", "insecure transport are prohibited")),
        ),
        ("the production config with the database password is the application user's alone", config_private),
        (
            "the application's session store (Redis) answers over TLS with its client certificate and password",
            sessions.connected and sessions.replies[:2] == ["ok:True", "ok:alice"],
        ),
        ("... but refuses FLUSHALL from it", [r[:23] for r in sessions.replies[2:]] == ["error:NoPermissionError"]),
        ("a plaintext connection to Redis is refused", not plaintext_redis.connected),
        ("root cannot log in to MariaDB over the network", "Access denied" in root_over_tls.stderr),
        ("the database port drops another machine on the network", outsider.reach(db.private_ip, 3306) is None),
        ("SSH to the database server from that machine is dropped", outsider.reach(db.private_ip, 22) is None),
        (
            "https:// on the app server serves a fleet CA certificate for its address, for 90 days or fewer",
            (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days <= 90,
        ),
        (
            "http:// answers only a 301 to the same path on https://",
            redirect is not None
            and (redirect[0], redirect[1].get("location")) == (301, f"https://{app.private_ip}/login?next=/"),
        ),
        ("https:// tells browsers to keep to https for two years (HSTS)", hsts == "max-age=63072000"),
        ("the application's own port 3000 drops that machine", outsider.http_get(app.private_ip, 3000) is None),
        ("over IPv6 the database server is shut too", outsider.reach(db.private_ipv6, 22) is None),
        ("the nightly backup job runs and copies its encrypted pair to the backup server", backup_ran),
        ("that backup, decrypted on the operator's machine, restores both rows", restored),
        (
            f"{ADMIN}'s login was mailed to {ALERT_EMAIL} (STARTTLS relay) within 30 s",
            sinks.wait_for("mail", [f"for {ADMIN} from", "From: monit@app"], since=logged_in_at) is not None,
        ),
    ]


def session_store_attempts(app):
    """The application's session store tried from the app server with the production config's
    values: a session written and read, FLUSHALL; and the same port without TLS."""
    install_client(app)
    config = dict(
        line.split("=", 1)
        for line in app.check(f"cat {DEFAULT_CONFIG_DIR}/production.env").splitlines()
        if line.startswith("REDIS_")
    )
    where = (app, config["REDIS_HOST"], int(config["REDIS_PORT"]))
    sessions = attempt(
        *where,
        (("SET", "session:demo", "alice"), ("GET", "session:demo"), ("FLUSHALL",)),
        ca=config["REDIS_TLS_CA"],
        certificate=config["REDIS_TLS_CERT"],
        key=config["REDIS_TLS_KEY"],
        user=config["REDIS_USER"],
        password=config["REDIS_PASSWORD"],
    )
    return sessions, attempt(*where, plaintext=True)


def restore_newest_backup(operator: Operator, db, backup) -> bool:
    """Fetch the newest pair from the backup server, decrypt it here, restore it into a new
    database on the database server, and compare."""
    names = sorted(backup.check("ls -1 /srv/db-backups/incoming").split())
    if len(names) < 2:
        return False
    folder = Path(tempfile.mkdtemp(prefix="hardening-demo-restore-"))
    for name in names[-2:]:
        (folder / name).write_bytes(backup.read_bytes(f"/srv/db-backups/incoming/{name}"))
    archive = next(folder.glob("*.sql.gz.enc"))
    restore = operator.restore(archive, db, "restored")
    rows = db.exec("mariadb -N restored -e 'SELECT body FROM notes ORDER BY id'").stdout.split("\n")[:2]
    return restore.returncode == 0 and rows == ["first note", "second note"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the containers running")
    options = parser.parse_args()

    client = docker.from_env()
    remove_leftovers(client, kept_too=True)
    if options.keep:
        os.environ[RUN_OWNER] = KEPT  # the machines outlive this process: later test runs leave them
    admin_password = secrets.token_urlsafe(18)
    operator = Operator(Path(tempfile.mkdtemp(prefix="hardening-demo-")), admin_password=admin_password)
    os.environ["HARDENING_SECRETS_DIR"] = str(operator.secrets)  # TOTP windows used, shared with pyinfra
    fleet = Fleet(client, "debian12")
    try:
        banner("Starting throwaway app, db and backup containers (Debian 12, systemd, sshd)")
        machines = {}
        for role in ROLE_GROUPS:
            machines[role] = fleet.start(role, operator.root_public_key)
            act_like_a_provider_image(machines[role], role)
            print(f"    {role:7} {machines[role].name}  ssh -p {machines[role].ssh_port} 127.0.0.1")
        outsider = fleet.start("outsider", operator.root_public_key)
        sinks = start_sinks(outsider)
        print(
            f"    outsider {outsider.name}  (another machine on the network, in no inventory; it runs a "
            f"mail relay for the alerts on port {SMTP_PORT})"
        )
        send_alerts_to(sinks, operator, machines.values(), webhook=False)
        operator.also_in = {"db": (CACHE_SERVERS,)}  # the database server is the session store too
        inventory = operator.inventory(machines, name="demo-inventory")
        print(f"    operator files (keys, secret store, group data): {operator.home}")

        banner("Dry run: what the deploys would change (pyinfra --dry --diff)")
        stream_pyinfra(operator, inventory, *DEPLOYS.values(), args=("--dry", "--diff"))

        banner("Applying every role's deploy, connected as root (root login ends with this run)")
        stream_pyinfra(operator, inventory, *DEPLOYS.values(), args=("-y",))

        banner(f"Re-running every deploy as {ADMIN} (key + TOTP + sudo password): nothing is left to change")
        result = operator.pyinfra(operator.inventory(machines, user=ADMIN, name="demo-admin"), *DEPLOYS.values())
        print(f"    changed operations: {result.changed_count()}, failed: {sum(map(len, result.failed.values()))}")

        banner("What is now enforced, checked from outside")
        checks = enforced(operator, machines, outsider, sinks, admin_password)
        for text, holds in checks:
            print(f"    [{'ok' if holds else 'FAILED'}] {text}")

        banner("Lynis's judgement of each host (lynis audit system --quick)")
        with ThreadPoolExecutor(len(machines)) as pool:
            audits = list(pool.map(lynis.audit, machines.values()))
        for role, audit in zip(machines, audits):
            print(
                f"    {role:7} hardening index {audit.index} ({audit.index_without_container_tests()} without the "
                f"tests a container cannot pass), {len(audit.warnings)} warnings, "
                f"{len(audit.unexplained())} unexplained lost points"
            )
        if options.keep:
            print(
                f"\n    Containers left running; log in with: ssh -i {operator.admin_key} -p "
                f"{machines['app'].ssh_port} {ADMIN}@127.0.0.1 (TOTP enrollment sheet in {operator.secrets})"
            )
        return 0 if all(holds for _, holds in checks) and result.changed_count() == 0 else 1
    finally:
        if not options.keep:
            fleet.remove()


if __name__ == "__main__":
    sys.exit(main())
