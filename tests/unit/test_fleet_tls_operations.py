"""Leaf certificates from the fleet CA, as operations: facts in, commands out. The host's key is
made on the host; only its certificate request (public) reaches the operator's side."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyinfra.api import OperationError

from harness.operations import run_operation
from pyinfra_hardening import fleet_ca
from pyinfra_hardening.fleet_tls import Certificate, CertificateRequest, PrivateKeyPresent, leaf_certificate
from pyinfra_hardening.managed_files import candidate_path

pytestmark = pytest.mark.usefixtures("secret_store")  # with the fleet CA it makes

KEY = "/etc/mysql/tls/server.key"
CERT = "/etc/mysql/tls/server.crt"
ARGUMENTS = {
    "key": KEY,
    "certificate": CERT,
    "user": "mysql",
    "group": "mysql",
    "names": ["db1"],
    "addresses": ["10.0.0.21"],
    "client": False,
    "ca_keys": "keys",
}


def request_for_new_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM).decode()


def facts(key_present: bool, certificate: str | None, request: str | None) -> dict:
    return {
        (PrivateKeyPresent, (("path", KEY),)): key_present,
        (Certificate, (("path", CERT),)): certificate,
        (CertificateRequest, (("key", KEY),)): request,
    }


def public_key_of(pem: str, loader) -> bytes:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return loader(pem.encode()).public_key().public_bytes(serialization.Encoding.DER, spki)


def test_a_new_host_makes_its_key_and_gets_a_leaf_for_it():
    request = request_for_new_key()
    outcome = run_operation(leaf_certificate, facts(False, None, request), **ARGUMENTS)
    assert "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256" in outcome.commands[0]
    assert "chmod 400" in outcome.commands[0] and "chown mysql:mysql" in outcome.commands[0]
    leaf = outcome.uploads[candidate_path(CERT)]
    assert public_key_of(leaf, x509.load_pem_x509_certificate) == public_key_of(request, x509.load_pem_x509_csr)
    assert outcome.commands[-1].endswith(f"mv -f {candidate_path(CERT)} {CERT}")
    assert "PRIVATE KEY" not in "".join([*outcome.commands, *outcome.uploads.values()])


def test_a_valid_leaf_for_the_hosts_key_is_left_alone():
    request = request_for_new_key()
    leaf = fleet_ca.sign(request, ["db1"], ["10.0.0.21"], client=False)
    outcome = run_operation(leaf_certificate, facts(True, leaf, request), **ARGUMENTS)
    assert not outcome.changes and "30 days or more left" in (outcome.noop or "")


@pytest.mark.parametrize(
    "names, addresses", [(["db1", "db1.internal"], ["10.0.0.21"]), (["db1"], [])], ids=["other-name", "no-address"]
)
def test_a_leaf_for_other_names_is_issued_again_for_the_ones_in_data(names, addresses):
    request = request_for_new_key()
    leaf = fleet_ca.sign(request, names, addresses, client=False)
    outcome = run_operation(leaf_certificate, facts(True, leaf, request), **ARGUMENTS)
    new_leaf = x509.load_pem_x509_certificate(outcome.uploads[candidate_path(CERT)].encode())
    alternative = new_leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alternative.get_values_for_type(x509.DNSName) == ["db1"]
    assert [str(ip) for ip in alternative.get_values_for_type(x509.IPAddress)] == ["10.0.0.21"]


def test_a_leaf_is_issued_again_under_a_new_signer_or_for_a_new_key():
    request = request_for_new_key()
    leaf = fleet_ca.sign(request, ["db1"], ["10.0.0.21"], client=False)
    for_another_key = run_operation(leaf_certificate, facts(True, leaf, request_for_new_key()), **ARGUMENTS)
    assert candidate_path(CERT) in for_another_key.uploads
    fleet_ca.introduce()
    fleet_ca.promote("fleet-ca-2")
    renewed = run_operation(leaf_certificate, facts(True, leaf, request), **ARGUMENTS)
    assert not any("genpkey" in command for command in renewed.commands)  # the key stays
    new_leaf = x509.load_pem_x509_certificate(renewed.uploads[candidate_path(CERT)].encode())
    assert new_leaf.issuer.rfc4514_string().endswith("fleet-ca-2")


def test_a_key_no_request_can_be_made_from_fails_the_operation():
    with pytest.raises(OperationError, match="no certificate request could be made"):
        run_operation(leaf_certificate, facts(True, None, None), **ARGUMENTS)
