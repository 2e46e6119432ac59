"""A valid project of the operator's, and the corpus of single mistakes made to it.

Each case is one change to the valid project, as an operator would make it by mistake: one
line added to a group_data file (a later assignment wins in Python), one entry merged into a
host's inventory data, or one file of the secret store replaced. Every case must be refused
before anything changes on any host, with a message naming host, key and fix, and no secret.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from string import Template

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pyinfra_hardening.scaffold import project_files

from .operator import (
    ADMIN,
    ADMIN_PASSWORD,
    HARDENING_CA,
    OTHER_ADMIN,
    OTHER_ADMIN_PASSWORD,
    SMTP_PASSWORD,
    crypt_hash,
    write_secret,
)

ROLE_HOSTS = {"app1": "app_servers", "db1": "db_servers", "backup1": "backup_servers"}
# Groups a host of ROLE_HOSTS is in besides its own: the database server is the session store too.
ALSO_IN = {"cache_servers": "db1"}
WEBHOOK_URL = "https://hooks.example.test/services/T0001/B0001/Webhook-Secret-Token-93"
ADMIN_HASH = crypt_hash(ADMIN_PASSWORD)
# Secrets a case plants in data, which must never be echoed back.
PLANTED = "Planted-Secret-Value-77"


@dataclass(frozen=True)
class Case:
    """One mistake: ``where`` is a group_data file (``all``, ``app_servers``...), ``host:NAME``
    (a dict merged into that host's inventory data) or ``store:NAME`` (a secret file's text).
    ``text`` may use the ``$placeholders`` of ``Project.placeholders``. The refusal must name
    ``host`` and ``key`` and contain ``words``. ``on_host``: only a connected run can tell."""

    id: str
    where: str
    text: str
    host: str
    key: str
    words: str
    on_host: bool = False


def public_line(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, comment: str) -> str:
    openssh = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{openssh.decode()} {comment}"


class Project:
    """The operator's valid project for three hosts (one per role), written afresh per case.

    ``hosts`` maps each host of ROLE_HOSTS to its inventory data (connection and private_ip)."""

    def __init__(self, folder: Path, keys: dict[str, Path], hosts: dict[str, dict], admin_cidrs: list[str]):
        self.folder = folder
        self.admin_cidrs = admin_cidrs  # the operator's networks: SSH stays open to them
        self.keys = keys  # alice, carol (private keys; .pub beside), backup_public
        self.hosts = hosts
        # The fleet CA, made once with `hardening-ca init`: its public half copied into each
        # case's keys/, its key into each case's store.
        self.ca_store = folder / "ca-secrets"
        subprocess.run(
            [HARDENING_CA, "--keys", str(folder / "ca-keys"), "init"],
            check=True,
            capture_output=True,
            env={**os.environ, "HARDENING_SECRETS_DIR": str(self.ca_store)},
        )
        self.placeholders = {
            "alice_pub": Path(f"{keys['alice']}.pub").read_text().strip(),
            "carol_pub": Path(f"{keys['carol']}.pub").read_text().strip(),
            "alice_key": str(keys["alice"]),
            "alice_pub_path": f"{keys['alice']}.pub",
            "carol_key": str(keys["carol"]),
            "backup_public": str(keys["backup_public"]),
            "hash": ADMIN_HASH,
            "hash_cut": ADMIN_HASH[:-12],
            "hash_other": crypt_hash("Not-Alices-Password-1"),
            "password": ADMIN_PASSWORD,
            "planted": PLANTED,
            "app_ip": hosts["app1"]["private_ip"],
            "db_ip": hosts["db1"]["private_ip"],
            "rsa1024_pub": public_line(rsa.generate_private_key(65537, 1024), "weak@laptop"),
            "rsa2048_pub": public_line(rsa.generate_private_key(65537, 2048), "short@laptop"),
            "ecdsa_pub": public_line(ec.generate_private_key(ec.SECP384R1()), "ok@laptop"),
        }

    def group_data(self) -> dict[str, str]:
        admins = [
            {"name": ADMIN, "ssh_keys": [self.placeholders["alice_pub"]]},
            {"name": OTHER_ADMIN, "ssh_keys": [self.placeholders["carol_pub"]]},
        ]
        return {
            "all": (
                f"admin_users = {admins!r}\n"
                f"ssh_probe_key = {str(self.keys['alice'])!r}\n"
                "alert_email = 'ops@example.test'\n"
                "smtp_host = 'smtp.example.test'\n"
                "smtp_user = 'monit'\n"
                "alert_webhook = True\n"
                "alert_ignore_addresses = ['192.0.2.10']\n"
                f"admin_cidrs = {self.admin_cidrs!r}\n"
            ),
            "app_servers": "app_user = 'application'\n",
            "db_servers": f"backup_public_key = {str(self.keys['backup_public'])!r}\nbackup_time = '02:30'\n",
            "backup_servers": "offsite_backup_keep = 30\n",
            "cache_servers": "redis_persistence = 'none'\n",
        }

    def secrets(self) -> dict[str, str]:
        return {
            f"admin-{ADMIN}.password-hash": ADMIN_HASH,
            f"admin-{ADMIN}.password": ADMIN_PASSWORD,
            f"admin-{OTHER_ADMIN}.password-hash": crypt_hash(OTHER_ADMIN_PASSWORD),
            f"admin-{OTHER_ADMIN}.password": OTHER_ADMIN_PASSWORD,
            "smtp-password": SMTP_PASSWORD,
            "alert-webhook-url": WEBHOOK_URL,
            **{path.name: path.read_text() for path in self.ca_store.iterdir()},
        }

    def write(self, case: Case | None) -> Path:
        """The project with ``case``'s one change (none: the valid project), in a folder of its own."""
        root = self.folder / (case.id if case else "valid")
        shutil.rmtree(root, ignore_errors=True)
        for path, text in project_files().items():
            if path.startswith(("deploys/", "config.py")):
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_text(text)
        text = Template(case.text).substitute(self.placeholders) if case else ""
        where = case.where if case else ""
        group_data = self.group_data()
        if where in group_data:
            group_data[where] += text + "\n"
        (root / "group_data").mkdir()
        for group, body in group_data.items():
            (root / "group_data" / f"{group}.py").write_text(body)
        hosts = {name: dict(data) for name, data in self.hosts.items()}
        if where.startswith("host:"):
            hosts[where.removeprefix("host:")].update(eval(text))  # a dict literal from the corpus
        groups = [*((group, name) for name, group in ROLE_HOSTS.items()), *ALSO_IN.items()]
        inventory = "".join(f"{group} = [({name!r}, {hosts[name]!r})]\n" for group, name in groups)
        (root / "inventory.py").write_text(inventory)
        shutil.copytree(self.folder / "ca-keys", root / "keys")
        secrets = self.secrets()
        if where.startswith("store:"):
            secrets[where.removeprefix("store:")] = text
        for name, value in secrets.items():
            write_secret(root / ".secrets", name, value)
        return root


def make_keys(folder: Path) -> dict[str, Path]:
    """alice's and carol's key pairs (ed25519, made with ssh-keygen as operators do) and the
    backup public key the valid project encrypts to."""
    from pyinfra_hardening.backup_cli import generate_key_pair

    keys = {}
    for name in (ADMIN, OTHER_ADMIN):
        keys[name] = folder / f"{name}_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@laptop", "-f", str(keys[name])], check=True
        )
    keys["backup_public"] = folder / "backup-public.pem"
    generate_key_pair(folder / "backup-private.pem", keys["backup_public"], bits=3072)
    return keys


def secrets_in(root: Path) -> list[str]:
    """Every secret of a case's store, whole and line by line, and the planted one."""
    values = [PLANTED]
    for path in (root / ".secrets").iterdir():
        text = path.read_text().strip()
        values += [text, *(line for line in text.splitlines() if len(line) >= 8)]
    return [value for value in values if value]


def refusal_problems(case: Case, output: str, root: Path) -> list[str]:
    """What is wrong with ``output`` as ``case``'s refusal (empty: a proper refusal)."""
    wrong = []
    if "nothing was changed on any host" not in output:
        wrong.append("no refusal before changes")
    if f"host {case.host}: {case.key} " not in output:
        wrong.append(f"host {case.host} and key {case.key} not named")
    if case.words not in output:
        wrong.append(f"explanation {case.words!r} missing")
    if "fix:" not in output:
        wrong.append("no fix")
    if "Traceback" in output:
        wrong.append("a traceback")
    wrong += [f"secret {value[:4]}... shown" for value in secrets_in(root) if value in output]
    return wrong


ALICE = "{'name': 'alice', 'ssh_keys': ['$alice_pub']}"
CAROL = "{'name': 'carol', 'ssh_keys': ['$carol_pub']}"


def admins(alice: str = ALICE, carol: str = CAROL) -> str:
    """An ``admin_users`` line with alice's (or carol's) entry replaced."""
    return f"admin_users = [{alice}, {carol}]"


def alice_key(key: str) -> str:
    """An ``admin_users`` line where alice's one key is ``key`` (Python source)."""
    return admins(alice=f"{{'name': 'alice', 'ssh_keys': [{key}]}}")


def app(id: str, text: str, key: str, words: str, on_host: bool = False) -> Case:
    return Case(id, "app_servers", text, "app1", key, words, on_host)


def db(id: str, text: str, key: str, words: str, on_host: bool = False) -> Case:
    return Case(id, "db_servers", text, "db1", key, words, on_host)


def cache(id: str, text: str, key: str, words: str) -> Case:
    return Case(id, "cache_servers", text, "db1", key, words)


def every(id: str, text: str, key: str, words: str, on_host: bool = False) -> Case:
    return Case(id, "all", text, "app1", key, words, on_host)


def store(id: str, name: str, text: str, key: str, words: str) -> Case:
    return Case(id, f"store:{name}", text, "app1", key, words)


def on(host: str, id: str, data: str, key: str, words: str, on_host: bool = False) -> Case:
    return Case(id, f"host:{host}", data, host, key, words, on_host)


INTEGER = "must be a whole number"
NO_FRONT = "tls_front = False\n"
ACME = "tls_certificates = 'acme'\ntls_names = ['www.example.test']\n"
BOOL = "must be True or False"
LOGIN = "must be a lowercase login name"
CONTROL = "which could add a line or hide a difference"

CASES: list[Case] = [
    # --- the four examples ---------------------------------------------------------------
    app("app-user-is-the-only-admin", "app_user = 'alice'", "app_user", "is an admin's name"),
    store(
        "hash-cut-short", f"admin-{ADMIN}.password-hash", "$hash_cut", "admin_users", "incomplete or malformed yescrypt"
    ),
    every(
        "newline-adds-a-key",
        alice_key("'$alice_pub\\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEvil evil'"),
        "admin_users",
        "U+000A",
    ),
    db("app-database-is-mysql", "app_database = 'mysql'", "app_database", "MariaDB's own schemas"),
    # --- admin_users ----------------------------------------------------------------------------
    every("admins-not-a-list", "admin_users = 'alice'", "admin_users", "must be a list"),
    every("admins-empty", "admin_users = []", "admin_users", "nobody"),
    every("admin-name-uppercase", admins(alice="{'name': 'Alice', 'ssh_keys': ['$alice_pub']}"), "admin_users", LOGIN),
    every(
        "admin-name-root", admins(alice="{'name': 'root', 'ssh_keys': ['$alice_pub']}"), "admin_users", "system account"
    ),
    every(
        "admin-name-daemon",
        admins(alice="{'name': 'daemon', 'ssh_keys': ['$alice_pub']}"),
        "admin_users",
        "system account",
    ),
    every(
        "admin-name-www-data",
        admins(alice="{'name': 'www-data', 'ssh_keys': ['$alice_pub']}"),
        "admin_users",
        "system account",
    ),
    every(
        "admin-name-trailing-newline",
        admins(alice="{'name': 'alice\\n', 'ssh_keys': ['$alice_pub']}"),
        "admin_users",
        CONTROL,
    ),
    every(
        "admin-name-zero-width",
        admins(alice="{'name': 'ali\\u200bce', 'ssh_keys': ['$alice_pub']}"),
        "admin_users",
        "U+200B",
    ),
    every(
        "admin-name-cyrillic-a",
        admins(alice="{'name': '\\u0430lice', 'ssh_keys': ['$alice_pub']}"),
        "admin_users",
        LOGIN,
    ),
    every("admin-name-integer", admins(alice="{'name': 42, 'ssh_keys': ['$alice_pub']}"), "admin_users", LOGIN),
    every(
        "admin-name-with-space", admins(alice="{'name': 'al ice', 'ssh_keys': ['$alice_pub']}"), "admin_users", LOGIN
    ),
    every(
        "admin-name-too-long",
        admins(alice="{'name': '" + "a" * 33 + "', 'ssh_keys': ['$alice_pub']}"),
        "admin_users",
        LOGIN,
    ),
    every("admin-listed-twice", admins(carol=ALICE), "admin_users", "twice"),
    every("admin-without-keys", admins(alice="{'name': 'alice'}"), "admin_users", "at least one"),
    every("admin-keys-empty", alice_key(""), "admin_users", "at least one"),
    every(
        "admin-unknown-field",
        admins(alice="{'name': 'alice', 'ssh_key': ['$alice_pub']}"),
        "admin_users",
        "not a field",
    ),
    every(
        "admin-two-factor-string",
        admins(alice="{'name': 'alice', 'ssh_keys': ['$alice_pub'], 'two_factor': 'no'}"),
        "admin_users",
        BOOL,
    ),
    every(
        "admin-keys-a-string",
        admins(alice="{'name': 'alice', 'ssh_keys': '$alice_pub'}"),
        "admin_users",
        "must be a list of SSH public keys",
    ),
    every("admin-entry-a-string", admins(alice="'alice'"), "admin_users", "must be an entry like"),
    every(
        "admin-named-like-the-dump-account",
        admins(alice="{'name': 'backup', 'ssh_keys': ['$alice_pub']}"),
        "admin_users",
        "system account",
    ),
    # --- ssh keys -------------------------------------------------------------------------------
    every(
        "key-private",
        alice_key("'-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjE'"),
        "admin_users",
        "PRIVATE key",
    ),
    every("key-dsa", alice_key("'ssh-dss AAAAB3NzaC1kc3MAAACBAP1 old@box'"), "admin_users", "DSA key"),
    every("key-rsa-1024", alice_key("'$rsa1024_pub'"), "admin_users", "RSA key of 1024 bits"),
    every("key-rsa-2048", alice_key("'$rsa2048_pub'"), "admin_users", "RSA key of 2048 bits"),
    every("key-truncated", alice_key("'$alice_pub'[:60]"), "admin_users", "ssh_keys"),
    every(
        "key-body-cut-by-quads",
        alice_key("' '.join(['$alice_pub'.split()[0], '$alice_pub'.split()[1][:-8]])"),
        "admin_users",
        "does not load",
    ),
    every(
        "key-type-mismatch", alice_key("'ssh-rsa ' + '$alice_pub'.split()[1]"), "admin_users", "does not match its type"
    ),
    every("key-not-base64", alice_key("'ssh-ed25519 !!!!notbase64 x'"), "admin_users", "not base64"),
    every("key-with-options", alice_key("'from=\"10.0.0.1\" $alice_pub'"), "admin_users", "options before the key"),
    every("key-command-option", alice_key("'command=\"/bin/sh\" $alice_pub'"), "admin_users", "options before the key"),
    every("key-tab-separated", alice_key("'$alice_pub'.replace(' ', '\\t', 1)"), "admin_users", CONTROL),
    every("key-double-space", alice_key("'$alice_pub'.replace(' ', '  ', 1)"), "admin_users", "single spaces"),
    every("key-leading-space", alice_key("' $alice_pub'"), "admin_users", "single spaces"),
    every("key-trailing-space", alice_key("'$alice_pub '"), "admin_users", "single spaces"),
    every("key-carriage-return", alice_key("'$alice_pub\\r'"), "admin_users", "U+000D"),
    every("key-two-keys-in-one-entry", alice_key("'$alice_pub $carol_pub'"), "admin_users", "more than one key"),
    every("key-unknown-type", alice_key("'ssh-foo AAAAB3NzaC1yc2E bob'"), "admin_users", "public key type"),
    every("key-not-a-string", alice_key("1234"), "admin_users", "must be an SSH public key line"),
    every("key-no-break-space", alice_key("'$alice_pub'.replace(' ', '\\u00a0', 1)"), "admin_users", "U+00A0"),
    # --- the secret store -----------------------------------------------------------------------
    store("hash-is-the-password", f"admin-{ADMIN}.password-hash", "$password", "admin_users", "not a crypt(3) hash"),
    store(
        "hash-of-another-password",
        f"admin-{ADMIN}.password-hash",
        "$hash_other",
        "admin_users",
        "does not match the password in the store",
    ),
    store(
        "hash-md5",
        f"admin-{ADMIN}.password-hash",
        "$$1$$abcdefgh$$abcdefghijklmnopqrstuv",
        "admin_users",
        "not a crypt(3) hash",
    ),
    store(
        "hash-yescrypt-cut",
        f"admin-{ADMIN}.password-hash",
        "$$y$$j9T$$abcdefgh$$UGYCVcUwcoG0k8SZZ",
        "admin_users",
        "incomplete or malformed yescrypt",
    ),
    store(
        "hash-bcrypt-cut",
        f"admin-{ADMIN}.password-hash",
        "$$2b$$12$$abcdefghijklmnopqrstuv",
        "admin_users",
        "incomplete or malformed bcrypt",
    ),
    store(
        "hash-sha256-cut",
        f"admin-{ADMIN}.password-hash",
        "$$5$$saltsalt$$abc",
        "admin_users",
        "incomplete or malformed SHA-256",
    ),
    store("webhook-not-a-url", "alert-webhook-url", "hooks.example.test/$planted", "alert_webhook", "http(s)://"),
    store(
        "webhook-with-quote",
        "alert-webhook-url",
        'https://hooks.example.test/"$planted',
        "alert_webhook",
        "double quote",
    ),
    store(
        "webhook-with-backtick",
        "alert-webhook-url",
        "https://hooks.example.test/`$planted`",
        "alert_webhook",
        "http(s)://",
    ),
    store("smtp-password-with-quote", "smtp-password", 'pass"$planted', "smtp_user", ""),
    store("totp-secret-not-base32", f"admin-{ADMIN}.totp-secret", "not-base32-$planted", "admin_users", "bad secret"),
    # --- admin_group, sudo, root ----------------------------------------------------------------
    every("admin-group-root", "admin_group = 'root'", "admin_group", "system group"),
    every("admin-group-adm", "admin_group = 'adm'", "admin_group", "system group"),
    every("admin-group-shadow", "admin_group = 'shadow'", "admin_group", "system group"),
    every("admin-group-docker", "admin_group = 'docker'", "admin_group", "system group"),
    every("admin-group-an-admin", "admin_group = 'alice'", "admin_group", "an admin's own name"),
    every("admin-group-uppercase", "admin_group = 'Wheel'", "admin_group", LOGIN),
    every("admin-group-newline", "admin_group = 'sudo\\nroot'", "admin_group", CONTROL),
    every("admin-group-integer", "admin_group = 27", "admin_group", LOGIN),
    every("admin-group-existing-system-group", "admin_group = 'systemd-timesync'", "admin_group", "system group"),
    every("lock-root-string", "lock_root_password = 'yes'", "lock_root_password", BOOL),
    every("lock-root-integer", "lock_root_password = 1", "lock_root_password", BOOL),
    every("sudo-require-password-string", "sudo_require_password = 'true'", "sudo_require_password", BOOL),
    store(
        "lock-needs-the-admins-password", f"admin-{ADMIN}.password", "", "admin_users", "has no password in the store"
    ),
    # --- password quality -----------------------------------------------------------------------
    every("minlen-too-low", "password_minlen = 4", "password_minlen", "from 8 to 128"),
    every("minlen-string", "password_minlen = '12'", "password_minlen", INTEGER),
    every("minlen-float", "password_minlen = 12.0", "password_minlen", INTEGER),
    every("minlen-bool", "password_minlen = True", "password_minlen", INTEGER),
    every("retry-zero", "password_retry = 0", "password_retry", "from 1 to 10"),
    every("difok-too-high", "password_difok = 20", "password_difok", "larger than password_minlen"),
    every("ucredit-out-of-range", "password_ucredit = -11", "password_ucredit", "from -10 to 10"),
    every("lcredit-string", "password_lcredit = '-2'", "password_lcredit", INTEGER),
    every("dcredit-float", "password_dcredit = -1.5", "password_dcredit", INTEGER),
    every("ocredit-none", "password_ocredit = None", "password_ocredit", INTEGER),
    every(
        "credits-exceed-minlen",
        "password_minlen = 8\npassword_ucredit = -3\npassword_lcredit = -3\npassword_dcredit = -2",
        "password_minlen",
        "credits require",
    ),
    every("minclass-five", "password_minclass = 5", "password_minclass", "from 0 to 4"),
    every("remember-negative", "password_remember = -1", "password_remember", "from 0 to 400"),
    every("remember-string", "password_remember = '5'", "password_remember", INTEGER),
    every("faillock-deny-zero", "faillock_deny = 0", "faillock_deny", "from 1 to 100"),
    every("faillock-interval-short", "faillock_fail_interval = 10", "faillock_fail_interval", "from 60 to 86400"),
    every("faillock-unlock-float", "faillock_unlock_time = 900.0", "faillock_unlock_time", INTEGER),
    # --- time sync ------------------------------------------------------------------------------
    every("time-sync-ntpd", "time_sync_service = 'ntpd'", "time_sync_service", "must be one of"),
    every("time-sync-newline", "time_sync_service = 'chrony\\n'", "time_sync_service", CONTROL),
    every("time-sync-case", "time_sync_service = 'Chrony'", "time_sync_service", "must be one of"),
    # --- operating system -----------------------------------------------------------------------
    every("sysctl-key-injection", "kernel_parameters = {'kernel.sysrq = 1 ; x': 0}", "kernel_parameters", "sysctl key"),
    every("sysctl-key-newline", "kernel_parameters = {'kernel.sysrq\\nx': 0}", "kernel_parameters", CONTROL),
    every("sysctl-value-string", "kernel_parameters = {'kernel.sysrq': '0'}", "kernel_parameters", INTEGER),
    every("umask-world-writable", "login_umask = '002'", "login_umask", "keeps group and others from writing"),
    every("umask-not-octal", "login_umask = '0289'", "login_umask", "octal umask"),
    every("max-days-zero", "password_max_days = 0", "password_max_days", "from 1 to 99999"),
    every("min-days-string", "password_min_days = '1'", "password_min_days", INTEGER),
    every("warn-days-negative", "password_warn_days = -1", "password_warn_days", "from 0 to 365"),
    every("hash-rounds-low", "password_hash_rounds = 1000", "password_hash_rounds", "from 5000"),
    every("hash-rounds-huge", "password_hash_rounds = 999999999", "password_hash_rounds", "to 9999999"),
    every("hashing-md5", "password_hashing = 'md5'", "password_hashing", "must be one of"),
    every("hashing-injected", "password_hashing = 'sha512 nullok'", "password_hashing", "must be one of"),
    every("idle-timeout-float", "shell_idle_timeout = 9.5", "shell_idle_timeout", INTEGER),
    every("module-space", "disabled_kernel_modules = ['usb storage']", "disabled_kernel_modules", "module name"),
    every(
        "module-newline",
        "disabled_kernel_modules = ['usb-storage\\ninstall x /bin/sh']",
        "disabled_kernel_modules",
        CONTROL,
    ),
    every("banner-backslash", "login_banner = 'Authorised access only on \\\\n'", "login_banner", "backslashes"),
    every("banner-short", "login_banner = 'Keep out'", "login_banner", "20 to 2000"),
    every("security-updates-string", "security_updates = 'yes'", "security_updates", BOOL),
    every("private-homes-string", "private_home_folders = 'yes'", "private_home_folders", BOOL),
    every("reboot-time-bad", "security_reboot_time = '25:00'", "security_reboot_time", "HH:MM"),
    every(
        "reboot-without-updates",
        "security_updates = False\nsecurity_reboot_time = '04:00'",
        "security_reboot_time",
        "no update would ever ask",
    ),
    # --- file integrity -------------------------------------------------------------------------
    every("file-integrity-string", "file_integrity = 'on'", "file_integrity", BOOL),
    every("aide-time-bad", "file_integrity_check_time = '5:15'", "file_integrity_check_time", "HH:MM"),
    every(
        "aide-path-relative",
        "file_integrity_ignored_paths = ['srv/uploads']",
        "file_integrity_ignored_paths",
        "absolute path",
    ),
    every(
        "aide-path-newline",
        "file_integrity_ignored_paths = ['/srv/uploads\\n/ R']",
        "file_integrity_ignored_paths",
        CONTROL,
    ),
    every(
        "aide-path-regex",
        "file_integrity_ignored_paths = ['/srv/(.*)']",
        "file_integrity_ignored_paths",
        "absolute path",
    ),
    every("aide-path-string", "file_integrity_ignored_paths = '/srv/uploads'", "file_integrity_ignored_paths", "list"),
    # --- remote logging -------------------------------------------------------------------------
    every("remote-logging-string", "remote_logging = 'yes'", "remote_logging", BOOL),
    every("remote-logging-port-zero", "remote_logging_port = 0", "remote_logging_port", "from 1 to 65535"),
    # --- audit trail ---------------------------------------------------------------------------
    every("audit-trail-string", "audit_trail = 1", "audit_trail", BOOL),
    every("audit-trail-immutable-string", "audit_trail_immutable = 'no'", "audit_trail_immutable", BOOL),
    # --- ssh ------------------------------------------------------------------------------------
    every("two-factor-string", "ssh_two_factor = 'on'", "ssh_two_factor", BOOL),
    every(
        "strict-with-probe-unenrolled",
        "ssh_two_factor_strict = True\n"
        + admins(alice="{'name': 'alice', 'ssh_keys': ['$alice_pub'], 'two_factor': False}"),
        "ssh_two_factor_strict",
        "could not prove a login",
    ),
    every(
        "strict-nobody-enrolled",
        "ssh_two_factor_strict = True\n"
        + admins(
            alice="{'name': 'alice', 'ssh_keys': ['$alice_pub'], 'two_factor': False}",
            carol="{'name': 'carol', 'ssh_keys': ['$carol_pub'], 'two_factor': False}",
        ),
        "ssh_two_factor_strict",
        "nobody could log in",
    ),
    every("strong-crypto-string", "ssh_strong_crypto = 'yes'", "ssh_strong_crypto", BOOL),
    every(
        "allow-users-leaves-out-admin", "ssh_allow_users = ['carol']", "ssh_allow_users", "leaves out admin(s) alice"
    ),
    every("allow-users-a-string", "ssh_allow_users = 'alice'", "ssh_allow_users", "must be a list"),
    every(
        "allow-users-injection",
        "ssh_allow_users = ['alice', 'carol\\nPermitRootLogin yes']",
        "ssh_allow_users",
        CONTROL,
    ),
    every(
        "allow-groups-leave-out-admin-group",
        "ssh_allow_groups = ['staff']",
        "ssh_allow_groups",
        "leaves out admin_group",
    ),
    every("allow-groups-wildcard", "ssh_allow_groups = ['*']", "ssh_allow_groups", LOGIN),
    every("probe-user-not-an-admin", "ssh_probe_user = 'bob'", "ssh_probe_user", "is not one of admin_users"),
    every("probe-user-uppercase", "ssh_probe_user = 'Alice'", "ssh_probe_user", LOGIN),
    every("probe-key-missing", "ssh_probe_key = '/nonexistent/key'", "ssh_probe_key", "is not a file"),
    every("probe-key-is-public", "ssh_probe_key = '$alice_pub_path'", "ssh_probe_key", "is not a private key"),
    every(
        "probe-key-another-admins",
        "ssh_probe_key = '$carol_key'",
        "ssh_probe_key",
        "is not the private half of any of alice's ssh_keys",
    ),
    every("probe-key-integer", "ssh_probe_key = 5", "ssh_probe_key", "must be a file path"),
    every("probe-key-empty", "ssh_probe_key = ''", "ssh_probe_key", "must be a file path"),
    # --- login alerts ---------------------------------------------------------------------------
    every("alerts-string", "login_alerts = 'True'", "login_alerts", BOOL),
    every("monit-interval-zero", "monit_check_interval = 0", "monit_check_interval", "from 1 to 300"),
    every("monit-interval-string", "monit_check_interval = '5'", "monit_check_interval", INTEGER),
    every(
        "alert-email-two-addresses",
        "alert_email = 'ops@example.test, boss@example.test'",
        "alert_email",
        "email address",
    ),
    every("alert-email-newline", "alert_email = 'ops@example.test\\nset httpd port 2812'", "alert_email", CONTROL),
    every("alert-email-quote", "alert_email = 'ops\"@example.test'", "alert_email", "email address"),
    every("alert-email-unicode", "alert_email = 'öps@example.test'", "alert_email", "email address"),
    every("alert-email-list", "alert_email = ['ops@example.test']", "alert_email", "email address"),
    every("no-destination", "alert_email = None\nalert_webhook = False", "login_alerts", "alert_email"),
    every("smtp-host-with-password", "smtp_host = 'monit:$planted@smtp.example.test'", "smtp_host", "host name"),
    every("smtp-host-url", "smtp_host = 'smtp://smtp.example.test:587'", "smtp_host", "host name"),
    every("smtp-host-space", "smtp_host = 'smtp.example.test port 25'", "smtp_host", "host name"),
    every("smtp-port-string", "smtp_port = '587'", "smtp_port", INTEGER),
    every("smtp-port-zero", "smtp_port = 0", "smtp_port", "from 1 to 65535"),
    every("smtp-security-ssl", "smtp_security = 'ssl'", "smtp_security", "must be one of"),
    every("smtp-none-with-password", "smtp_security = 'none'", "smtp_security", ""),
    every("smtp-verify-string", "smtp_verify_certificate = 'no'", "smtp_verify_certificate", BOOL),
    every("smtp-user-with-quote", "smtp_user = 'monit\" password \"x'", "smtp_user", "without spaces, quotes"),
    every("smtp-user-with-newline", "smtp_user = 'monit\\n'", "smtp_user", CONTROL),
    every(
        "ignore-addresses-network",
        "alert_ignore_addresses = ['10.0.0.0/24']",
        "alert_ignore_addresses",
        "single IP address",
    ),
    every(
        "ignore-addresses-a-string", "alert_ignore_addresses = '192.0.2.10'", "alert_ignore_addresses", "must be a list"
    ),
    every(
        "ignore-addresses-regex",
        "alert_ignore_addresses = ['192.0.2.*']",
        "alert_ignore_addresses",
        "single IP address",
    ),
    every("webhook-string", "alert_webhook = 'https://hooks.example.test/x'", "alert_webhook", BOOL),
    every("pushover-without-secrets", "alert_pushover = True", "alert_pushover", ""),
    # --- firewall -------------------------------------------------------------------------------
    every("firewall-string", "firewall = 'off'", "firewall", BOOL),
    every("rollback-too-short", "firewall_rollback_seconds = 5", "firewall_rollback_seconds", "from 30 to 600"),
    every("admin-cidrs-host-bits", "admin_cidrs = ['203.0.113.7/24']", "admin_cidrs", "host bits set"),
    every("admin-cidrs-a-string", "admin_cidrs = '203.0.113.0/24'", "admin_cidrs", "must be a list"),
    every("admin-cidrs-hostname", "admin_cidrs = ['office.example.test']", "admin_cidrs", "is not a network"),
    app("app-ports-string", "app_tcp_ports = '80,443'", "app_tcp_ports", "list of TCP ports"),
    app("app-ports-out-of-range", "app_tcp_ports = [80, 70000]", "app_tcp_ports", "from 1 to 65535"),
    app("app-ports-twice", "app_tcp_ports = [80, 80, 443, 3000, 3003]", "app_tcp_ports", "twice"),
    # The redirects are the guide's model, used with the TLS front off.
    app(
        "redirect-into-closed-port",
        f"{NO_FRONT}app_port_redirects = {{80: 8080}}",
        "app_port_redirects",
        "leaves closed",
    ),
    app(
        "redirect-to-ssh",
        f"{NO_FRONT}app_tcp_ports = [80, 443, 3000, 3003, 22]\napp_port_redirects = {{80: 22}}",
        "app_port_redirects",
        "sshd's port",
        on_host=True,
    ),
    app(
        "redirect-from-ssh",
        f"{NO_FRONT}app_port_redirects = {{22: 3000, 443: 3003}}",
        "app_port_redirects",
        "sshd's port",
        True,
    ),
    app("redirect-string-ports", "app_port_redirects = {'80': '3000'}", "app_port_redirects", INTEGER),
    # --- public TLS -----------------------------------------------------------------------------
    app("tls-front-string", "tls_front = 'on'", "tls_front", BOOL),
    app("tls-profile-old", "tls_profile = 'old'", "tls_profile", "must be one of"),
    app("tls-certificates-letsencrypt", "tls_certificates = 'letsencrypt'", "tls_certificates", "must be one of"),
    app("acme-without-names", f"{ACME}tls_names = []", "tls_names", "is empty"),
    app("acme-single-label-name", f"{ACME}tls_names = ['intranet']", "tls_names", "no dot"),
    app("acme-without-the-front", f"{NO_FRONT}{ACME}", "tls_certificates", "needs the front"),
    app("tls-names-wildcard", "tls_names = ['*.example.test']", "tls_names", "lowercase DNS name"),
    app("tls-names-a-string", "tls_names = 'www.example.test'", "tls_names", "must be a list"),
    app("tls-names-injection", "tls_names = ['www.example.test; return 200']", "tls_names", "lowercase DNS name"),
    app("tls-names-newline", "tls_names = ['www.example.test\\nevil']", "tls_names", CONTROL),
    app("acme-email-not-an-address", "acme_email = 'ops'", "acme_email", "email address"),
    app("acme-server-plain-http", "acme_server = 'http://acme.example.test/dir'", "acme_server", "https://"),
    app("acme-server-quote", 'acme_server = "https://acme.example.test/dir\'"', "acme_server", "https://"),
    app("acme-bundle-missing", f"{ACME}acme_ca_bundle = '/nonexistent/ca.pem'", "acme_ca_bundle", "readable PEM"),
    app("app-port-is-the-fronts", "app_port = 443", "app_port", "front's own ports"),
    app("app-port-a-string", "app_port = '3000'", "app_port", INTEGER),
    app("hsts-beyond-two-years", "hsts_max_age = 999999999", "hsts_max_age", "from 0 to 63072000"),
    app("hsts-preload-short", "hsts_preload = True\nhsts_max_age = 86400", "hsts_max_age", "preload"),
    app("hsts-preload-string", "hsts_preload = 'yes'", "hsts_preload", BOOL),
    # --- application ----------------------------------------------------------------------------
    app("app-user-root", "app_user = 'root'", "app_user", "system account"),
    app("app-user-www-data", "app_user = 'www-data'", "app_user", "system account"),
    app("app-user-sudo-group", "app_user = 'sudo'", "app_user", "admin group"),
    app("app-user-the-drop-box-account", "app_user = 'db-backup'", "app_user", "drop box"),
    app("app-user-newline", "app_user = 'application\\n'", "app_user", CONTROL),
    app("app-user-uppercase", "app_user = 'App'", "app_user", LOGIN),
    app("app-user-integer", "app_user = 1000", "app_user", LOGIN),
    app("app-user-existing-person", "app_user = 'carol'", "app_user", "is an admin's name"),
    app("app-config-dir-etc", "app_config_dir = '/etc'", "app_config_dir", "no system folder"),
    app("app-config-dir-usr-local", "app_config_dir = '/usr/local'", "app_config_dir", "no system folder"),
    app("app-config-dir-relative", "app_config_dir = 'config'", "app_config_dir", "absolute folder path"),
    app("app-config-dir-dot-dot", "app_config_dir = '/srv/app/../../etc'", "app_config_dir", "absolute folder path"),
    app("app-config-dir-space", "app_config_dir = '/srv/my app'", "app_config_dir", "absolute folder path"),
    app("app-config-dir-newline", "app_config_dir = '/srv/app\\n'", "app_config_dir", CONTROL),
    app("app-command-relative", "app_command = 'node server.js'", "app_command", "absolute path"),
    app("app-command-backslash", "app_command = '/usr/bin/app --name a\\\\b'", "app_command", "without backslashes"),
    app("app-command-specifier", "app_command = '/usr/bin/app --home %h'", "app_command", "without backslashes or %"),
    app("app-command-newline", "app_command = '/usr/bin/app\\nExecStartPre=/bin/rm'", "app_command", CONTROL),
    app("app-command-list", "app_command = ['/usr/bin/app']", "app_command", "absolute path"),
    app("app-config-format-yaml", "app_config_format = 'yaml'", "app_config_format", "one of 'env', 'json'"),
    store(
        "app-database-password-unsafe-for-env",
        "app-database-password",
        "it's $$HOME `id`",
        "app_config_format",
        "cannot carry the stored app-database-password",
    ),
    # --- fleet CA -------------------------------------------------------------------------------
    every("fleet-ca-keys-nowhere", "fleet_ca_keys = 'nowhere'", "fleet_ca_keys", "has no CA that can sign"),
    every("fleet-ca-keys-integer", "fleet_ca_keys = 7", "fleet_ca_keys", "must be a file path"),
    store("fleet-ca-key-garbage", "fleet-ca-1.key", "not a key", "fleet_ca_keys", "has no CA that can sign"),
    # --- database -------------------------------------------------------------------------------
    db("db-port-string", "database_port = '3306'", "database_port", INTEGER),
    db("db-port-zero", "database_port = 0", "database_port", "from 1 to 65535"),
    db("app-database-system-schema", "app_database = 'information_schema'", "app_database", "MariaDB's own"),
    db("app-database-mysql-uppercase", "app_database = 'MySQL'", "app_database", "MariaDB's own"),
    db("app-database-test", "app_database = 'test'", "app_database", "MariaDB's own"),
    db("app-database-quote", 'app_database = "app\'; DROP DATABASE mysql; --"', "app_database", "A-Z a-z 0-9 _"),
    db("app-database-backtick", "app_database = 'app`x'", "app_database", "A-Z a-z 0-9 _"),
    db("app-database-newline", "app_database = 'application\\n'", "app_database", CONTROL),
    db("app-database-user-root", "app_database_user = 'root'", "app_database_user", "MariaDB's or this project's"),
    db(
        "app-database-user-dump",
        "app_database_user = 'backup_dump'",
        "app_database_user",
        "MariaDB's or this project's",
    ),
    db("app-database-user-mysql", "app_database_user = 'mysql'", "app_database_user", "MariaDB's or this project's"),
    db("app-database-user-too-long", "app_database_user = '" + "a" * 33 + "'", "app_database_user", "1 to 32"),
    db("app-database-user-quote", "app_database_user = \"app'@'%\"", "app_database_user", "A-Z a-z 0-9 _"),
    # --- backups --------------------------------------------------------------------------------
    db("backups-string", "backups = 'yes'", "backups", BOOL),
    db("backup-key-missing", "backup_public_key = 'keys/nowhere.pem'", "backup_public_key", "is not a file"),
    db("backup-key-is-an-ssh-key", "backup_public_key = '$alice_pub_path'", "backup_public_key", "PEM public key"),
    db("backup-key-is-private", "backup_public_key = '$alice_key'", "backup_public_key", "PRIVATE key"),
    db("backup-key-none", "backup_public_key = None", "backup_public_key", "is not set"),
    db("backup-time-24", "backup_time = '24:00'", "backup_time", "'HH:MM'"),
    db("backup-time-cron", "backup_time = '1 0 * * *'", "backup_time", "'HH:MM'"),
    db("backup-time-newline", "backup_time = '00:01\\n* * * * * root curl evil'", "backup_time", CONTROL),
    db("backup-keep-zero", "backup_keep = 0", "backup_keep", "from 1 to 1000"),
    db("backup-keep-string", "backup_keep = '7'", "backup_keep", INTEGER),
    db("backup-ssh-port-string", "backup_server_ssh_port = '22'", "backup_server_ssh_port", INTEGER),
    # --- the session store ----------------------------------------------------------------------
    cache("redis-port-string", "redis_port = '6379'", "redis_port", INTEGER),
    cache("redis-port-the-databases", "redis_port = 3306", "redis_port", "database port too"),
    cache("redis-tls-old", "redis_tls_protocols = 'TLSv1.1 TLSv1.2'", "redis_tls_protocols", "must be one of"),
    cache("redis-persistence-unknown", "redis_persistence = 'always'", "redis_persistence", "must be one of"),
    cache("redis-user-default", "redis_app_user = 'default'", "redis_app_user", "default user"),
    cache("redis-user-admin", "redis_app_user = 'admin'", "redis_app_user", "admin user"),
    cache(
        "redis-user-adds-a-user",
        "redis_app_user = 'app\\nuser evil on nopass ~* +@all'",
        "redis_app_user",
        CONTROL,
    ),
    cache("redis-user-with-space", "redis_app_user = 'app nopass'", "redis_app_user", "Redis user name"),
    cache("redis-keys-everything", "redis_app_keys = ['*']", "redis_app_keys", "every key"),
    cache("redis-keys-none", "redis_app_keys = []", "redis_app_keys", "is empty"),
    cache("redis-keys-a-string", "redis_app_keys = 'session:*'", "redis_app_keys", "list of key patterns"),
    cache("redis-keys-add-a-rule", "redis_app_keys = ['session:* +@all']", "redis_app_keys", "no spaces"),
    cache("redis-commands-all", "redis_app_commands = ['+@all']", "redis_app_commands", "never gets dangerous"),
    cache("redis-commands-dangerous", "redis_app_commands = ['+@dangerous']", "redis_app_commands", "never gets"),
    cache("redis-commands-unknown", "redis_app_commands = ['+@sessions']", "redis_app_commands", "not a Redis"),
    cache(
        "redis-commands-backtick",
        "redis_app_commands = ['+get`reboot`']",
        "redis_app_commands",
        "ACL command rule",
    ),
    cache("redis-disable-acl", "redis_disabled_commands = ['acl']", "redis_disabled_commands", "clients need"),
    cache(
        "redis-disable-quote",
        "redis_disabled_commands = ['flushall\" \"']",
        "redis_disabled_commands",
        "lowercase Redis command name",
    ),
    Case(
        "offsite-keep-zero",
        "backup_servers",
        "offsite_backup_keep = 0",
        "backup1",
        "offsite_backup_keep",
        "from 1 to 10000",
    ),
    # --- the inventory --------------------------------------------------------------------------
    on("app1", "private-ip-not-an-address", "{'private_ip': '10.0.0.300'}", "private_ip", "not an IP address"),
    on("app1", "private-ip-public", "{'private_ip': '8.8.8.8'}", "private_ip", "public address"),
    on("app1", "private-ip-link-local", "{'private_ip': '169.254.10.10'}", "private_ip", "link-local"),
    on("app1", "private-ip-link-local-v6", "{'private_ip': 'fe80::1'}", "private_ip", "link-local"),
    on("app1", "private-ip-loopback", "{'private_ip': '127.0.0.1'}", "private_ip", "not one host's address"),
    on("app1", "private-ip-everywhere", "{'private_ip': '0.0.0.0'}", "private_ip", "not one host's address"),
    on("app1", "private-ip-network", "{'private_ip': '10.0.0.0/24'}", "private_ip", "not an IP address"),
    on("app1", "private-ip-integer", "{'private_ip': 167772171}", "private_ip", "not an IP address"),
    on("app1", "private-ip-newline", "{'private_ip': '$app_ip\\n'}", "private_ip", CONTROL),
    on("app1", "private-ip-another-hosts", "{'private_ip': '$db_ip'}", "private_ip", "is also db1's"),
    on("db1", "private-ip-missing-on-db", "{'private_ip': None}", "private_ip", "is not set"),
    on(
        "app1",
        "private-ip-not-on-the-host",
        "{'private_ip': '10.254.254.254'}",
        "private_ip",
        "is not an address of this host",
        on_host=True,
    ),
    on("app1", "ssh-port-string", "{'ssh_port': '22'}", "ssh_port", INTEGER),
    on("app1", "ssh-port-out-of-range", "{'ssh_port': 70000}", "ssh_port", "from 1 to 65535"),
    on("app1", "ssh-user-uppercase", "{'ssh_user': 'Root'}", "ssh_user", LOGIN),
    on("app1", "ssh-user-integer", "{'ssh_user': 0}", "ssh_user", LOGIN),
    on("app1", "ssh-key-integer", "{'ssh_key': 7}", "ssh_key", "file path"),
    on(
        "app1",
        "admin-as-an-existing-system-account",
        "{'admin_users': [" + ALICE.replace("'alice'", "'games'") + "]}",
        "admin_users",
        "system account",
    ),
    on(
        "app1",
        "existing-system-account-as-admin",
        "{'admin_users': [" + ALICE.replace("'alice'", "'messagebus'") + "]}",
        "admin_users",
        "system account",
    ),
    on(
        "app1",
        "app-user-an-existing-login",
        "{'app_user': 'debian'}",
        "app_user",
        "an existing account on this host",
        on_host=True,
    ),
    # --- keys with no effect, and secrets where they do not belong ------------------------------
    every("typo", "pasword_minlen = 12", "pasword_minlen", "rename it to 'password_minlen'"),
    every("wrong-case", "Admin_Group = 'wheel'", "Admin_Group", "rename it to 'admin_group'"),
    every("yaml-style-line", "admin_group: 'wheel'", "admin_group", "sets nothing in Python"),
    every("yaml-style-flag", "firewall: False", "firewall", "sets nothing in Python"),
    every("sudo-password-in-data", "_sudo_password = '$password'", "_sudo_password", "plaintext secret"),
    every("ssh-password-in-data", "ssh_password = '$planted'", "ssh_password", "plaintext secret"),
    every("misspelt-secret-key", "smtp_pasword = '$planted'", "smtp_pasword", "plaintext secret"),
    every("smtp-password-in-data", "smtp_password = '$planted'", "smtp_password", "plaintext secret"),
    db("database-password-in-data", "app_database_password = '$planted'", "app_database_password", "plaintext secret"),
    every("secret-in-a-typo-key", "smtp_hots = 'monit:$planted@smtp.example.test'", "smtp_hots", "rename it"),
]
