"""The TLS front's operations and config, facts in and commands or text out: certbot is asked
only when the lineage is missing or for other names or another CA; nginx.conf follows the
TLSRef profile and the host's OpenSSL."""

from __future__ import annotations

import re

import pytest

from harness.certificates import self_signed
from harness.operations import run_operation
from pyinfra_hardening.fleet_tls import Certificate
from pyinfra_hardening.managed_files import ManagedFile, candidate_path, validated_file
from pyinfra_hardening.tls_front import (
    NGINX_CONFIG,
    AcmeServerOf,
    OpensslVersion,
    TlsFrontSettings,
    acme_certificate,
    front_config,
)

SERVER = "https://acme.example.test/dir"
ARGUMENTS = {
    "lineage": "front",
    "names": ["www.example.test", "example.test"],
    "server": SERVER,
    "webroot": "/var/lib/acme",
    "email": "ops@example.test",
}


def facts(certificate: str | None, server: str | None) -> dict:
    return {
        (Certificate, (("path", "/etc/letsencrypt/live/front/cert.pem"),)): certificate,
        (AcmeServerOf, (("lineage", "front"),)): server,
    }


def test_a_host_without_the_certificate_asks_certbot_for_it_through_the_webroot():
    outcome = run_operation(acme_certificate, facts(None, None), **ARGUMENTS)
    [command] = outcome.commands
    assert command.startswith("certbot certonly --non-interactive")
    for part in (
        "--agree-tos --email ops@example.test --no-eff-email",
        f"--server {SERVER}",
        "--webroot -w /var/lib/acme",
        "--cert-name front",
        "--key-type ecdsa --elliptic-curve secp256r1",
        "-d www.example.test -d example.test",
    ):
        assert part in command
    assert "--force-renewal" not in command


def test_the_same_names_from_the_same_server_change_nothing_whatever_their_order():
    held = self_signed("example.test", "www.example.test")
    outcome = run_operation(acme_certificate, facts(held, SERVER), **ARGUMENTS)
    assert not outcome.changes
    assert outcome.noop == f"certificate front is for www.example.test, example.test, from {SERVER}"


@pytest.mark.parametrize(
    "held, server",
    [
        (self_signed("www.example.test"), SERVER),  # a name was added in data
        (self_signed("www.example.test", "example.test"), "https://acme-staging.example.test/dir"),
    ],
    ids=["other-names", "other-ca"],
)
def test_other_names_or_another_ca_are_issued_anew_at_once(held, server):
    outcome = run_operation(acme_certificate, facts(held, server), **ARGUMENTS)
    [command] = outcome.commands
    assert "--force-renewal" in command and "-d www.example.test -d example.test" in command


def test_a_private_acme_server_is_verified_with_its_ca_and_an_account_may_have_no_email():
    arguments = {**ARGUMENTS, "email": None, "ca_bundle": "/etc/ssl/acme ca.pem"}
    [command] = run_operation(acme_certificate, facts(None, None), **arguments).commands
    assert command.startswith("REQUESTS_CA_BUNDLE='/etc/ssl/acme ca.pem' certbot certonly")
    assert "--register-unsafely-without-email" in command and "--email" not in command


def config(openssl: tuple[int, ...] | None, tls: tuple[str, str] | None = ("/c/chain.pem", "/c/key.pem"), **data):
    """nginx.conf as the front writes it for ``data``, on a host with that OpenSSL."""
    settings = TlsFrontSettings.model_validate(data)
    outcome = run_operation(
        validated_file,
        {ManagedFile: None, OpensslVersion: openssl},
        dest=NGINX_CONFIG,
        content=lambda: front_config(settings, ["www.example.test", "10.0.0.11", "fd00::11"], tls),
        validator="nginx -t -q -c {}",
    )
    assert f"nginx -t -q -c {candidate_path(NGINX_CONFIG)}; then mv -f" in outcome.commands[-1]
    return outcome.uploads[candidate_path(NGINX_CONFIG)]


def directive(text: str, name: str) -> list[str]:
    return re.findall(rf"^\s*{name} (.+);$", text, re.M)


def test_intermediate_offers_tls_1_2_and_1_3_with_ecdhe_aead_suites_only():
    text = config((3, 0, 11))
    assert directive(text, "ssl_protocols") == ["TLSv1.2 TLSv1.3"]
    [ciphers] = directive(text, "ssl_ciphers")
    assert all(suite.startswith("ECDHE-") and ("GCM" in suite or "CHACHA20" in suite) for suite in ciphers.split(":"))
    assert directive(text, "ssl_prefer_server_ciphers") == ["off"]
    assert directive(text, "ssl_session_tickets") == ["off"]
    assert directive(text, "server_tokens") == ["off"]
    assert "ssl_stapling" not in text


def test_modern_offers_tls_1_3_alone():
    text = config((3, 0, 11), tls_profile="modern")
    assert directive(text, "ssl_protocols") == ["TLSv1.3"]
    assert directive(text, "ssl_ciphers") == []


@pytest.mark.parametrize(
    "openssl, groups",
    [
        ((3, 0, 11), "X25519:prime256v1:secp384r1"),
        ((3, 5, 1), "X25519MLKEM768:X25519:prime256v1:secp384r1"),
        (None, "X25519:prime256v1:secp384r1"),
    ],
    ids=["debian12", "debian13", "unknown"],
)
def test_the_post_quantum_group_comes_first_where_openssl_has_it(openssl, groups):
    assert directive(config(openssl), "ssl_ecdh_curve") == [groups]


def test_hsts_is_two_years_and_preload_adds_subdomains():
    nosniff = "X-Content-Type-Options nosniff always"
    headers = directive(config((3, 0, 11)), "add_header")
    assert headers == ['Strict-Transport-Security "max-age=63072000" always', nosniff]
    preloaded = config((3, 0, 11), hsts_preload=True)
    assert directive(preloaded, "add_header") == [
        'Strict-Transport-Security "max-age=63072000; includeSubDomains; preload" always',
        nosniff,
    ]


def test_port_80_redirects_served_names_to_themselves_and_others_to_the_first_name():
    text = config((3, 0, 11))
    assert directive(text, "server_name") == ["www.example.test 10.0.0.11 [fd00::11]", "_"]
    assert directive(text, "return") == ["301 https://$host$request_uri", "301 https://www.example.test$request_uri"]
    assert directive(text, "proxy_pass") == ["http://127.0.0.1:3000"]


def test_before_the_first_certificate_only_port_80_is_served():
    text = config((3, 0, 11), tls=None)
    assert directive(text, "listen") == ["80", "[::]:80", "80 default_server", "[::]:80 default_server"]
    assert "ssl_certificate" not in text
    assert directive(text, "root") == ["/var/lib/pyinfra-hardening/acme"] * 2
