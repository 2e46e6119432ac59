"""The fleet CA on the operator's machine: its key stays in the store, its leaves verify in a
real TLS handshake against the trust bundle, rotation keeps every host trusting the signer."""

from __future__ import annotations

import datetime
import shlex
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness.readme import readme_block
from pyinfra_hardening import fleet_ca

KEYS = Path("keys")


def host_key_and_request(name: str) -> tuple[bytes, str]:
    """What a host makes: a key it keeps, and a request for a certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, request.public_bytes(serialization.Encoding.PEM).decode()


def handshake(tmp_path: Path, leaf: str, key: bytes, bundle: str, server_name: str) -> None:
    """A TLS 1.3 handshake over loopback: the server shows ``leaf``, the client trusts ``bundle``."""
    (tmp_path / "leaf.pem").write_text(leaf)
    (tmp_path / "leaf.key").write_bytes(key)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    client_context = ssl.create_default_context(cadata=bundle)
    client_context.minimum_version = ssl.TLSVersion.TLSv1_3
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with server_context.wrap_socket(connection, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    server = threading.Thread(target=serve)
    server.start()
    try:
        with socket.create_connection(listener.getsockname()) as raw:
            with client_context.wrap_socket(raw, server_hostname=server_name):
                pass
    finally:
        server.join(5)
        listener.close()


def test_the_ca_key_stays_in_the_store_and_its_certificate_is_public(store_without_ca):
    assert fleet_ca.init() == "fleet-ca-1"
    key_file = store_without_ca / "fleet-ca-1.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert not any("PRIVATE KEY" in path.read_text() for path in KEYS.iterdir())
    (authority,) = fleet_ca.authorities()
    assert (
        authority.signing and authority.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    )
    assert isinstance(authority.certificate.public_key(), ec.EllipticCurvePublicKey)


def test_a_signed_leaf_passes_a_real_handshake_and_a_client_trusting_another_ca_refuses_it(
    store_without_ca, tmp_path, monkeypatch
):
    fleet_ca.init()
    key, request = host_key_and_request("db1")
    leaf = fleet_ca.sign(request, ["db1.internal"], ["10.0.0.21"], client=False)
    handshake(tmp_path, leaf, key, fleet_ca.trust_bundle(), "db1.internal")
    handshake(tmp_path, leaf, key, fleet_ca.trust_bundle(), "10.0.0.21")
    other = tmp_path / "other"
    with monkeypatch.context() as another_project:
        another_project.setenv("HARDENING_SECRETS_DIR", str(tmp_path / "other-secrets"))
        fleet_ca.init(other)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(tmp_path, leaf, key, fleet_ca.trust_bundle(other), "db1.internal")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(tmp_path, leaf, key, fleet_ca.trust_bundle(), "app1.internal")  # a name it was not issued


def test_a_leaf_lasts_ninety_days_and_is_renewed_with_thirty_left(store_without_ca):
    fleet_ca.init()
    leaf_pem = fleet_ca.sign(host_key_and_request("app1")[1], ["app1"], [], client=True)
    leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=90, minutes=5)
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.ExtendedKeyUsageOID.CLIENT_AUTH]
    now = datetime.datetime.now(datetime.timezone.utc)
    assert not fleet_ca.needs_renewal(leaf_pem)
    assert not fleet_ca.needs_renewal(leaf_pem, now=now + datetime.timedelta(days=59))
    assert fleet_ca.needs_renewal(leaf_pem, now=now + datetime.timedelta(days=61))
    assert fleet_ca.needs_renewal(None) and fleet_ca.needs_renewal("not a certificate")


def test_rotation_trusts_both_cas_until_the_old_one_is_retired(store_without_ca, tmp_path):
    fleet_ca.init()
    key, request = host_key_and_request("db1")
    old_leaf = fleet_ca.sign(request, ["db1"], [], client=False)
    assert fleet_ca.introduce() == "fleet-ca-2"
    assert fleet_ca.trust_bundle().count("BEGIN CERTIFICATE") == 2
    assert not fleet_ca.needs_renewal(old_leaf)  # the old CA still signs
    fleet_ca.promote("fleet-ca-2")
    assert fleet_ca.needs_renewal(old_leaf)  # re-issued under the new CA on the next run
    new_leaf = fleet_ca.sign(request, ["db1"], [], client=False)
    handshake(tmp_path, old_leaf, key, fleet_ca.trust_bundle(), "db1")  # no outage before the re-issue
    with pytest.raises(fleet_ca.CaError, match="signs the fleet's certificates"):
        fleet_ca.retire("fleet-ca-2")
    fleet_ca.retire("fleet-ca-1")
    handshake(tmp_path, new_leaf, key, fleet_ca.trust_bundle(), "db1")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(tmp_path, old_leaf, key, fleet_ca.trust_bundle(), "db1")
    assert fleet_ca.introduce() == "fleet-ca-3"  # a retired name is never reused


def test_a_passphrase_encrypts_the_stored_key_and_signing_needs_it(store_without_ca, monkeypatch):
    monkeypatch.setenv(fleet_ca.PASSPHRASE_ENV, "correct horse battery staple")
    fleet_ca.init()
    assert "ENCRYPTED PRIVATE KEY" in (store_without_ca / "fleet-ca-1.key").read_text()
    request = host_key_and_request("app1")[1]
    assert "BEGIN CERTIFICATE" in fleet_ca.sign(request, ["app1"], [], client=True)
    monkeypatch.setenv(fleet_ca.PASSPHRASE_ENV, "wrong")
    with pytest.raises(fleet_ca.CaError, match=fleet_ca.PASSPHRASE_ENV):
        fleet_ca.sign(request, ["app1"], [], client=True)


def test_a_forged_request_is_refused(store_without_ca):
    fleet_ca.init()
    request = host_key_and_request("app1")[1]
    body = request.splitlines()
    body[3] = body[3][:10] + ("A" if body[3][10] != "A" else "B") + body[3][11:]
    with pytest.raises((fleet_ca.CaError, ValueError)):
        fleet_ca.sign("\n".join(body) + "\n", ["app1"], [], client=True)


def test_the_command_prints_no_key_and_explains_what_it_refuses(store_without_ca, capsys):
    assert fleet_ca.main(["init"]) == 0
    out = capsys.readouterr().out
    assert "fleet-ca-1\tsigning" in out and "PRIVATE" not in out
    assert fleet_ca.main(["init"]) == 1
    assert "use introduce, promote, retire" in capsys.readouterr().err
    assert fleet_ca.main(["retire", "fleet-ca-9"]) == 1
    assert "fleet-ca-9 is not a trusted CA (fleet-ca-1)" in capsys.readouterr().err


def test_the_readmes_rotation_commands_run_as_written(store_without_ca):
    """The installed command, in a project directory, one line of the README after another."""
    command = Path(sys.executable).with_name("hardening-ca")
    for line in readme_block("Fleet CA"):
        program, *arguments = shlex.split(line)
        assert program == "hardening-ca"
        done = subprocess.run([str(command), *arguments], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{line}: {done.stderr}"
    assert [authority.name for authority in fleet_ca.authorities()] == ["fleet-ca-2"]
    assert "PRIVATE" not in done.stdout and "fleet-ca-2\tsigning" in done.stdout
