"""The operator's machine in tests: SSH keys, a secret store, group data, an inventory, and
pyinfra runs whose results come back per host."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pyinfra_hardening import fleet_ca
from pyinfra_hardening.application import CLIENT_CERTIFICATE, CLIENT_KEY, DEFAULT_CONFIG_DIR
from pyinfra_hardening.backup_cli import generate_key_pair
from pyinfra_hardening.fleet_tls import TRUST_BUNDLE

from .containers import REPO, Machine

ADMIN = "alice"
ADMIN_PASSWORD = "Correct-Horse-42-Battery"
# A second enrolled admin for refused logins, so TOTP rate limits never touch alice's logins.
OTHER_ADMIN = "carol"
OTHER_ADMIN_PASSWORD = "Other-Horse-17-Battery"
# Where the fleet's login alerts go: a mail relay that wants a login.
ALERT_EMAIL = "ops@example.test"
SMTP_USER = "monit"
SMTP_PASSWORD = "Mail-Relay-Pass-51"
# Backups the test fleets keep: few, so a test sees both servers rotate.
DB_BACKUP_KEEP, OFFSITE_BACKUP_KEEP = 3, 4
# The session store keeps its data on disk, so the nightly backup holds it: as snapshots on one
# release, as an append-only file on the other.
REDIS_PERSISTENCE = {"debian12": "rdb", "debian13": "aof"}
# The operator's backup command, from the same environment as the tests.
HARDENING_BACKUP = str(Path(sys.executable).parent / "hardening-backup")
HARDENING_CA = str(Path(sys.executable).parent / "hardening-ca")
# The app server's TLS files for the database, where the app deploy puts them by default.
APP_TLS = (TRUST_BUNDLE, f"{DEFAULT_CONFIG_DIR}/{CLIENT_CERTIFICATE}", f"{DEFAULT_CONFIG_DIR}/{CLIENT_KEY}")
ROLE_GROUPS = {"app": "app_servers", "db": "db_servers", "backup": "backup_servers"}
# Each role deploy, and the machine of the test fleet it hardens: the db machine is the session
# store too (a host may hold both roles).
DEPLOYS = {role: f"deploys/{role}_server.py" for role in ("app", "db", "cache", "backup")}
DEPLOYED_ON = {"app": "app", "db": "db", "cache": "db", "backup": "backup"}


def make_key(path: Path, comment: str) -> str:
    """Write an ed25519 private key to ``path`` and return its public line."""
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    path.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{public.decode()} {comment}"


def crypt_hash(password: str) -> str:
    """A yescrypt hash of ``password``, as Debian's passwd makes (Lynis counts SHA-512 with
    its default rounds as weak), from this machine's libcrypt."""
    library = ctypes.CDLL(ctypes.util.find_library("crypt"))
    library.crypt_gensalt.restype = ctypes.c_char_p
    library.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    library.crypt.restype = ctypes.c_char_p
    library.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return library.crypt(password.encode(), library.crypt_gensalt(b"$y$", 0, None, 0)).decode()


def write_secret(store: Path, name: str, value: str) -> None:
    store.mkdir(mode=0o700, exist_ok=True)
    path = store / name
    path.write_text(value + "\n")
    path.chmod(0o600)


@dataclass
class Run:
    """What one pyinfra invocation did, per host."""

    returncode: int
    stdout: str
    stderr: str
    changed: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def changed_count(self) -> int:
        return sum(len(names) for names in self.changed.values())


class Operator:
    """Everything on the operator's side, in one temporary folder."""

    def __init__(self, home: Path, admin_password: str = ADMIN_PASSWORD):
        self.home = home
        self.ca_keys = home / "keys"  # the fleet CA's public half (its key is in the store)
        self.root_key = home / "root_ed25519"
        self.root_public_key = make_key(self.root_key, "operator@test")
        self.admin_key = home / "alice_ed25519"
        self.admin_public_key = make_key(self.admin_key, "alice@test")
        self.other_admin_key = home / "carol_ed25519"
        self.other_admin_public_key = make_key(self.other_admin_key, "carol@test")
        self.secrets = home / "secrets"
        for name, password in ((ADMIN, admin_password), (OTHER_ADMIN, OTHER_ADMIN_PASSWORD)):
            write_secret(self.secrets, f"admin-{name}.password-hash", crypt_hash(password))
            write_secret(self.secrets, f"admin-{name}.password", password)
        self.group_data = home / "group_data"
        self.group_data.mkdir()
        self.write_group_data("all", self.base_group_data())
        self.known_hosts = home / "known_hosts"
        # The pair backups are encrypted to; the private half stays here, as in the README.
        self.backup_private_key = home / "backup-private.pem"
        self.backup_public_key = home / "backup-public.pem"
        generate_key_pair(self.backup_private_key, self.backup_public_key, bits=3072)
        # Added to every host in the inventories written from now on (a fleet's alert settings).
        self.host_data: dict = {}
        # Groups a role's machine is in besides its own, in the inventories written from now on.
        self.also_in: dict[str, tuple[str, ...]] = {}
        # The fleet CA, made as the README says.
        self.hardening_ca("init")

    def hardening_ca(self, *arguments: str) -> None:
        """``hardening-ca`` on the operator's machine, with this operator's store and keys folder."""
        env = {**os.environ, "HARDENING_SECRETS_DIR": str(self.secrets)}
        command = [HARDENING_CA, "--keys", str(self.ca_keys), *arguments]
        subprocess.run(command, check=True, env=env, capture_output=True, timeout=60)

    def totp_secret(self, admin: str) -> str:
        """The admin's TOTP secret, as the deploy generated it into the store."""
        return (self.secrets / f"admin-{admin}.totp-secret").read_text().strip()

    def app_query(
        self,
        client: Machine,
        db: Machine,
        sql: str,
        run_as: str = "application",
        tls: tuple[str, str, str] | None = APP_TLS,
    ) -> subprocess.CompletedProcess:
        """Run ``sql`` from ``client`` as the application's database account, as the app would:
        as ``run_as``, over TLS that verifies the server, with the client certificate (the
        ``tls`` files: CA bundle, certificate, key; the app server's by default), or with
        ``tls=None`` in plaintext."""
        password = (self.secrets / "app-database-password").read_text().strip()
        options = "--skip-ssl"
        if tls is not None:
            ca, certificate, key = tls
            options = f"--ssl-ca={ca} --ssl-cert={certificate} --ssl-key={key} --ssl-verify-server-cert"
        return client.exec(
            f"runuser -u {run_as} -- env MYSQL_PWD={shlex.quote(password)} mariadb --batch --skip-column-names "
            f"{options} -h {db.private_ip} -u application application -e {shlex.quote(sql)}"
        )

    def sign(self, request: str, machine: Machine, client: bool, days: int = fleet_ca.LEAF_DAYS) -> str:
        """A leaf for ``machine``'s name and private address, signed by this operator's fleet CA
        as a run would sign it (``days``: shorter to try renewal)."""
        with mock.patch.dict(os.environ, {"HARDENING_SECRETS_DIR": str(self.secrets)}):
            return fleet_ca.sign(request, [machine.name], [machine.private_ip], client, keys=self.ca_keys, days=days)

    def client_certificate(self, machine: Machine, folder: str = "/root/fleet-client") -> tuple[str, str, str]:
        """A fleet CA client certificate for ``machine`` (which no deploy set up), made here and
        copied there with the trust bundle; returns the files as ``app_query`` takes them."""
        key = ec.generate_private_key(ec.SECP256R1())
        request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
        leaf = self.sign(request.public_bytes(serialization.Encoding.PEM).decode(), machine, client=True)
        bundle = fleet_ca.trust_bundle(self.ca_keys)  # public files only: no store needed
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        files = (f"{folder}/ca.pem", f"{folder}/client.pem", f"{folder}/client.key")
        machine.check(f"mkdir -p -m 700 {folder}")
        for path, text in zip(files, (bundle, leaf, private)):
            machine.exec(f"umask 077 && cat > {path}", stdin=text)
        return files

    def restore(self, archive: Path, db: Machine, database: str) -> subprocess.CompletedProcess:
        """``hardening-backup restore`` of ``archive`` into a new ``database`` on ``db``, with the
        operator's private key, fed to the MariaDB client there."""
        return subprocess.run(
            [
                HARDENING_BACKUP,
                "restore",
                "--private-key",
                str(self.backup_private_key),
                str(archive),
                "--database",
                database,
                "--via",
                f"docker exec -i {db.container.id} mariadb",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def base_group_data(self) -> dict:
        """Two admins; alice's private key is the operator's, so runs prove logins with it."""
        return {
            "admin_users": [
                {"name": ADMIN, "ssh_keys": [self.admin_public_key]},
                {"name": OTHER_ADMIN, "ssh_keys": [self.other_admin_public_key]},
            ],
            "ssh_probe_key": str(self.admin_key),
            "fleet_ca_keys": str(self.ca_keys),
        }

    def write_group_data(self, group: str, values: dict, folder: Path | None = None) -> Path:
        folder = folder or self.group_data
        folder.mkdir(exist_ok=True)
        (folder / f"{group}.py").write_text("".join(f"{key} = {value!r}\n" for key, value in values.items()))
        return folder

    def inventory(
        self,
        machines: dict[str, Machine],
        user: str = "root",
        name: str = "inventory",
        extra_app_servers: tuple[Machine, ...] = (),
        data: dict | None = None,
        groups: dict[str, str] | None = None,
    ) -> Path:
        """An inventory file with each machine in its role's group (or the group ``groups`` names
        for its role), reached over real SSH; ``data`` is added to every host's data."""
        group_of = {**ROLE_GROUPS, **(groups or {})}
        key = self.root_key if user == "root" else self.admin_key
        by_group: dict[str, list] = {}
        members = [
            *((group_of[role], machine) for role, machine in machines.items()),
            *(("app_servers", machine) for machine in extra_app_servers),
            *((group, machines[role]) for role, extra in self.also_in.items() if role in machines for group in extra),
        ]
        for group, machine in members:
            by_group.setdefault(group, []).append(
                (
                    machine.name,
                    {
                        "ssh_hostname": "127.0.0.1",
                        "ssh_port": machine.ssh_port,
                        "ssh_user": user,
                        "ssh_key": str(key),
                        "ssh_known_hosts_file": str(self.known_hosts),
                        "ssh_strict_host_key_checking": "off",
                        # OpenSSH 10 turns a source away for a while after unauthenticated connections.
                        "ssh_connect_retries": 5,
                        "ssh_connect_retry_min_delay": 2.0,
                        "ssh_connect_retry_max_delay": 10.0,
                        "private_ip": machine.private_ip,
                        # The operator's network: without it the db and backup firewalls admit no SSH from here.
                        "admin_cidrs": [f"{machine.operator_address}/32"],
                        "backup_public_key": str(self.backup_public_key),
                        **self.host_data,
                        **(data or {}),
                    },
                )
            )
        path = self.home / f"{name}.py"
        path.write_text("".join(f"{group} = {hosts!r}\n" for group, hosts in by_group.items()))
        return path

    def pyinfra_command(
        self, inventory: Path, *deploys: str, args: tuple[str, ...] = (), group_data: Path | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """The command line and environment an operator would use, run from the repo root."""
        command = [
            sys.executable,
            "-m",
            "pyinfra",
            *args,
            "--group-data",
            str(group_data or self.group_data),
            str(inventory),
            *deploys,
        ]
        return command, {**os.environ, "HARDENING_SECRETS_DIR": str(self.secrets), "PYTHONUNBUFFERED": "1"}

    def pyinfra(
        self, inventory: Path, *deploys: str, args: tuple[str, ...] = (), group_data: Path | None = None
    ) -> Run:
        """Run pyinfra and collect per-host results (``--json`` unless it is a dry run)."""
        dry = "--dry" in args
        # A dry run prints its diffs while detecting changes, which -y and --json skip.
        args = args if dry else ("-y", "--json", *args)
        command, env = self.pyinfra_command(inventory, *deploys, args=args, group_data=group_data)
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        run = Run(done.returncode, done.stdout, done.stderr)
        if not dry and done.stdout.strip().startswith("{"):
            results = json.loads(done.stdout)["results"] or {"operations": []}
            for operation in results["operations"]:
                for host in operation["success"]:
                    run.changed.setdefault(host, []).append(operation["name"])
                for host in operation["error"]:
                    run.failed.setdefault(host, []).append(operation["name"])
        else:
            # pyinfra prints no JSON once every host has failed; its log still says where.
            run.failed = _failures_in_log(done.stderr)
        return run


def _failures_in_log(log: str) -> dict[str, list[str]]:
    failed: dict[str, list[str]] = {}
    operation = None
    for line in log.splitlines():
        started = re.match(r"--> Starting operation: (.*?)\s*$", line)
        if started:
            operation = started.group(1)
        error = re.match(r"\s*\[(\S+)\]\s+Error", line)
        if error and operation:
            failed.setdefault(error.group(1), []).append(operation)
    return failed
