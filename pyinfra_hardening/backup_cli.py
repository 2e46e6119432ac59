"""``hardening-backup``: the operator's side of the encrypted backups, run on your own machine.

    hardening-backup keygen --private-key ~/backup-key.pem --public-key keys/backup-public.pem
    hardening-backup fetch inventories/prod.py backup1.example.com --user alice --out restore
    hardening-backup restore --private-key ~/backup-key.pem restore/db1_20261122T000100Z.sql.gz.enc \\
        --sql-out restore.sql
    hardening-backup fetch inventories/prod.py backup1.example.com --user alice --out restore \\
        --session-store cache1
    hardening-backup restore --private-key ~/backup-key.pem \\
        restore/cache1.redis_20261122T000100Z.rdb.gz.enc --rdb-out dump.rdb

``keygen`` makes the RSA pair: set ``backup_public_key`` to the public half; keep the private half
off every server (it is the only way to read a backup). ``fetch`` logs in to a backup server as
an admin (key, TOTP code and sudo password from the secret store, as pyinfra does) and copies the
newest complete pair here (the sealed files are root's: it reads them through sudo): of a
database server's SQL, or with ``--session-store`` of a session store's Redis snapshots.
``restore`` checks the archive against its passphrase file, decrypts both here, and writes the
SQL to ``--sql-out``, or feeds it to ``--via`` (a command that runs a MariaDB client; default
``mariadb``) into ``--database``; a Redis snapshot goes to ``--rdb-out``, the file the session
store's ``redis-restore`` loads.
"""

from __future__ import annotations

import argparse
import getpass
import gzip
import hashlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from . import backups, compat, fleet, secret_store
from .ssh import AdminLogin, ProbeFailed, logged_in

PASSPHRASE_SUFFIX = ".passphrase.enc"
# What the backup script gives `openssl enc` (and what a decryption by hand must give it). The
# passphrase is 256 random bits: the iterations slow down no feasible guess; OpenSSL wants some.
PBKDF2_ITERATIONS = 100_000
OPENSSL_SALT_MAGIC = b"Salted__"
RDB_MAGIC = b"REDIS"  # how every RDB file begins
DEFAULT_BITS = 4096
DATABASE_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
OAEP = asymmetric_padding.OAEP(mgf=asymmetric_padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class RestoreError(Exception):
    """A backup that cannot be restored, and why."""


def generate_key_pair(
    private_path: Path, public_path: Path, bits: int = DEFAULT_BITS, passphrase: bytes | None = None
) -> None:
    """Write a new RSA key pair; the private file is readable by its owner only."""
    for path in (private_path, public_path):
        if path.exists():
            raise RestoreError(f"{path} exists; move it away first (an old key may still open old backups)")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    data = path.read_bytes()
    passphrase = None
    if b"ENCRYPTED" in data:
        passphrase = getpass.getpass(f"Passphrase for {path}: ").encode()
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError) as error:
        raise RestoreError(f"{path} is not a usable PEM private key ({error})") from error
    if not isinstance(key, rsa.RSAPrivateKey):
        raise RestoreError(f"{path} is not an RSA private key")
    return key


def kind_of(archive: Path) -> str:
    """What ``archive`` holds (``backups.SQL`` or ``backups.RDB``), from its name."""
    for kind in backups.KINDS:
        if archive.name.endswith(backups.archive_suffix(kind)):
            return kind
    endings = " or ".join(backups.archive_suffix(kind) for kind in backups.KINDS)
    raise RestoreError(f"{archive} is not a backup archive (its name ends in {endings})")


def passphrase_file_for(archive: Path) -> Path:
    suffix = backups.archive_suffix(kind_of(archive))
    return archive.with_name(archive.name[: -len(suffix)] + PASSPHRASE_SUFFIX)


def decrypt_archive(key: rsa.RSAPrivateKey, archive: bytes, sealed_passphrase: bytes) -> bytes:
    """What ``archive`` holds (an SQL dump, an RDB file), after checking it is the one its
    passphrase file names."""
    try:
        passphrase, checksum = key.decrypt(sealed_passphrase, OAEP).decode().split("\n")[:2]
    except ValueError as error:
        raise RestoreError(
            "the passphrase file does not open with this private key (another key pair, or not a passphrase file)"
        ) from error
    if hashlib.sha256(archive).hexdigest() != checksum:
        raise RestoreError(
            "the archive is not the one its passphrase file was written for (an incomplete copy, or altered)"
        )
    if not archive.startswith(OPENSSL_SALT_MAGIC):
        raise RestoreError("the archive is not in `openssl enc` format")
    salt, ciphertext = archive[8:16], archive[16:]
    material = PBKDF2HMAC(hashes.SHA256(), length=48, salt=salt, iterations=PBKDF2_ITERATIONS).derive(
        passphrase.encode()
    )
    decryptor = Cipher(algorithms.AES(material[:32]), modes.CBC(material[32:])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        compressed = unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()
        return gzip.decompress(compressed)
    except (ValueError, OSError) as error:
        raise RestoreError(f"the archive does not decrypt to a gzip file ({error})") from error


def restore_sql(database: str, dump: bytes) -> bytes:
    """The dump, prefixed to go into ``database`` (created if missing)."""
    if not DATABASE_RE.fullmatch(database):
        raise RestoreError(f"database name {database!r} must be 1 to 64 of A-Z a-z 0-9 _")
    return f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4;\nUSE `{database}`;\n".encode() + dump


def write_private(path: Path, data: bytes) -> None:
    """``data`` into ``path``, readable by its owner only from the first byte."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def run_with_sudo(transport: paramiko.Transport, command: str, password: str) -> bytes:
    """What ``command`` prints, run through sudo with ``password`` on its standard input (no
    terminal needed, and the password on no command line)."""
    channel = transport.open_session(timeout=20)
    channel.exec_command(f"sudo -S -p '' sh -c {shlex.quote(command)}")
    channel.sendall(password.encode() + b"\n")
    channel.shutdown_write()
    output, errors = channel.makefile("rb").read(), channel.makefile_stderr("rb").read()
    if channel.recv_exit_status() != 0:
        raise RestoreError(f"`{command}` failed on the backup server: {errors.decode(errors='replace').strip()}")
    return output


def newest_pair(names: list[str], source: str | None, kind: str) -> list[str]:
    """The newest complete pair (archive, passphrase file) of ``kind`` among ``names``, of
    ``source`` (the inventory name of the host that sent it) if given."""
    suffix = backups.archive_suffix(kind)
    prefix = "" if source is None else f"{backups.file_source(source, kind)}_"
    stamps = {name[: -len(suffix)] for name in names if name.endswith(suffix)}
    complete = [stem for stem in stamps if f"{stem}{PASSPHRASE_SUFFIX}" in names and stem.startswith(prefix)]
    if not complete:
        what = "database backup" if kind == backups.SQL else "Redis snapshot"
        raise RestoreError(f"no complete {what}{' of ' + source if source else ''} on the backup server")
    newest = max(complete, key=lambda stem: stem.rsplit("_", 1)[1])
    return [f"{newest}{suffix}", f"{newest}{PASSPHRASE_SUFFIX}"]


def fetch(inventory_path: Path, host_name: str, user: str, out: Path, source: str | None, kind: str) -> list[Path]:
    """Copy the newest backup pair of ``kind`` from backup server ``host_name`` of the inventory into ``out``."""
    host = compat.load_inventory(str(inventory_path)).get_host(host_name)  # the data a run would see
    if host is None:
        raise RestoreError(f"{host_name} is not in {inventory_path}")
    password = secret_store.lookup(secret_store.admin_password_name(user))
    if password is None:
        where = secret_store.where(secret_store.admin_password_name(user))
        raise RestoreError(f"{user}'s password is not in the secret store ({where}); sudo needs it")
    address, port = fleet.ssh_address(host)
    try:
        transport = logged_in(AdminLogin(user, fleet.connect_key(host), address, port))
    except (ProbeFailed, paramiko.SSHException, OSError) as error:
        raise RestoreError(f"could not log in to {host_name} as {user}: {error}") from None
    try:
        names = run_with_sudo(transport, f"ls -1 {backups.INCOMING}", password.reveal()).decode().split()
        out.mkdir(parents=True, exist_ok=True)
        fetched = []
        for name in newest_pair(names, source, kind):
            data = run_with_sudo(transport, f"cat {backups.INCOMING}/{name}", password.reveal())
            write_private(out / name, data)
            fetched.append(out / name)
        return fetched
    finally:
        transport.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hardening-backup", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="make the RSA key pair backups are encrypted to")
    keygen.add_argument("--private-key", type=Path, required=True, help="where to write the private key (mode 600)")
    keygen.add_argument("--public-key", type=Path, required=True, help="where to write the public key")
    keygen.add_argument("--bits", type=int, default=DEFAULT_BITS, choices=(3072, 4096))
    keygen.add_argument("--protect", action="store_true", help="encrypt the private key with a passphrase you type")
    fetched = commands.add_parser("fetch", help="copy the newest backup pair from a backup server, as an admin")
    fetched.add_argument("inventory", type=Path, help="your pyinfra inventory file")
    fetched.add_argument("host", help="the backup server, as the inventory names it")
    fetched.add_argument("--user", required=True, help="your admin login (key, TOTP and sudo from the store)")
    fetched.add_argument("--out", type=Path, required=True, help="the folder to copy the pair into (files 600)")
    origin = fetched.add_mutually_exclusive_group()
    origin.add_argument("--database-server", help="the newest backup of this database server (its inventory name)")
    origin.add_argument(
        "--session-store", help="the newest Redis snapshot of this session store (its inventory name) instead"
    )
    restore = commands.add_parser("restore", help="decrypt a backup and restore it into a database")
    restore.add_argument("archive", type=Path, help="the NAME.sql.gz.enc or NAME.rdb.gz.enc file")
    restore.add_argument("--passphrase-file", type=Path, help="NAME.passphrase.enc (default: beside the archive)")
    restore.add_argument("--private-key", type=Path, required=True)
    target = restore.add_mutually_exclusive_group(required=True)
    target.add_argument("--database", help="restore into this database (created if missing)")
    target.add_argument("--sql-out", type=Path, help="write the decrypted SQL here (mode 600) instead")
    target.add_argument("--rdb-out", type=Path, help="write a decrypted Redis snapshot here (mode 600)")
    restore.add_argument(
        "--via",
        default="mariadb",
        help="command that runs the MariaDB client with the SQL on its stdin (default: mariadb)",
    )
    options = parser.parse_args(argv)

    try:
        if options.command == "keygen":
            passphrase = None
            if options.protect:
                passphrase = getpass.getpass("Passphrase for the private key: ").encode()
                if passphrase != getpass.getpass("Again: ").encode() or not passphrase:
                    raise RestoreError("the passphrases differ or are empty")
            generate_key_pair(options.private_key, options.public_key, options.bits, passphrase)
            print(
                f"private key: {options.private_key} (keep it off the servers, and keep a copy offline)\n"
                f"public key:  {options.public_key} (set backup_public_key to this path)"
            )
            return 0
        if options.command == "fetch":
            if options.session_store:
                source, kind = options.session_store, backups.RDB
            else:
                source, kind = options.database_server, backups.SQL
            paths = fetch(options.inventory, options.host, options.user, options.out, source, kind)
            print("\n".join(f"fetched {path}" for path in paths))
            return 0
        kind = kind_of(options.archive)
        if (kind == backups.RDB) != bool(options.rdb_out):
            wanted = "--rdb-out FILE" if kind == backups.RDB else "--database NAME or --sql-out FILE"
            raise RestoreError(
                f"{options.archive.name} is {'a Redis snapshot' if kind == backups.RDB else 'SQL'}: "
                f"restore it with {wanted}"
            )
        key = load_private_key(options.private_key)
        sealed = (options.passphrase_file or passphrase_file_for(options.archive)).read_bytes()
        dump = decrypt_archive(key, options.archive.read_bytes(), sealed)
        if options.rdb_out:
            if not dump.startswith(RDB_MAGIC):
                raise RestoreError(f"{options.archive.name} does not hold a Redis snapshot (an RDB file)")
            write_private(options.rdb_out, dump)
            print(f"Redis snapshot written to {options.rdb_out}: load it on the session store with redis-restore")
            return 0
        if options.sql_out:
            write_private(options.sql_out, dump)
            print(f"decrypted SQL written to {options.sql_out}")
            return 0
        result = subprocess.run(shlex.split(options.via), input=restore_sql(options.database, dump))
        if result.returncode != 0:
            raise RestoreError(f"{options.via!r} failed (exit {result.returncode}); nothing more was done")
        print(f"restored {options.archive.name} into database {options.database}")
        return 0
    except (RestoreError, OSError) as error:
        print(f"hardening-backup: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
