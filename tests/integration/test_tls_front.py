"""The app server's public TLS front (guide 4.2), judged from outside: sslyze against Mozilla's
(TLSRef's) profiles with the chain verified to the ACME CA's root, the redirect and HSTS, a
renewal nginx serves with no manual step, and the modern profile refusing TLS 1.2."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from harness.acme import PUBLIC_NAME
from harness.operator import DEPLOYS
from harness.tls_client import https_headers, served_certificate, verified_context
from pyinfra_hardening import fleet_ca
from pyinfra_hardening.application import DEFAULT_CONFIG_DIR
from pyinfra_hardening.tls_front import ACME_LIVE, APP_TLS_CERTIFICATE, APP_TLS_KEY, DEPLOY_HOOK, NGINX_CONFIG

SSLYZE = Path(sys.executable).with_name("sslyze")


def sslyze(profile: str, address: str, ca_file: Path) -> subprocess.CompletedProcess:
    """sslyze's check of the front against one of Mozilla's profiles, the chain verified with
    ``ca_file`` alone, for the public name (SNI) at ``address``."""
    return subprocess.run(
        [SSLYZE, f"--mozilla_config={profile}", f"--certinfo_ca_file={ca_file}", f"{PUBLIC_NAME}:443{{{address}}}"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def compliant(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == 0 and f"{PUBLIC_NAME}:443: OK - Compliant." in result.stdout


@pytest.fixture(scope="module")
def acme_root(deployment, tmp_path_factory) -> Path:
    return deployment.acme.root_file(tmp_path_factory.mktemp("acme-root"))


def test_sslyze_finds_the_front_compliant_with_the_intermediate_profile(deployment, acme_root):
    result = sslyze("intermediate", deployment.machines["app"].private_ip, acme_root)
    assert compliant(result), result.stdout[-3000:] + result.stderr[-2000:]


def test_the_front_serves_the_acme_cas_short_lived_certificate_for_the_public_name(deployment, acme_root):
    leaf = served_certificate(deployment.machines["app"].private_ip, PUBLIC_NAME, acme_root)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [PUBLIC_NAME]
    assert "Pebble" in leaf.issuer.rfc4514_string()
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days <= 366


def test_http_answers_only_a_redirect_to_the_same_path_on_https(deployment):
    app = deployment.machines["app"]
    status, headers = deployment.outsider.http_get(app.private_ip, 80, "/account?tab=keys", host=PUBLIC_NAME)
    assert (status, headers["location"]) == (301, f"https://{PUBLIC_NAME}/account?tab=keys")
    # A request for another name, or by address, is sent to the public name rather than echoed.
    status, headers = deployment.outsider.http_get(app.private_ip, 80, "/x", host="evil.example")
    assert (status, headers["location"]) == (301, f"https://{PUBLIC_NAME}/x")


def test_https_carries_hsts_for_two_years_nosniff_and_no_nginx_version(deployment, acme_root):
    headers = https_headers(deployment.machines["app"].private_ip, PUBLIC_NAME, acme_root)
    assert headers["strict-transport-security"] == "max-age=63072000"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["server"] == "nginx"


def test_the_post_quantum_group_is_offered_where_openssl_has_it(deployment):
    config = deployment.machines["app"].check(f"grep ssl_ecdh_curve {NGINX_CONFIG}")
    if deployment.release == "debian12":
        assert "MLKEM" not in config, "OpenSSL 3.0 has no ML-KEM"
        return
    outsider = deployment.outsider
    if outsider.exec("command -v openssl").returncode != 0:
        outsider.install("openssl")
    handshake = outsider.exec(
        f"openssl s_client -connect {deployment.machines['app'].private_ip}:443 -servername {PUBLIC_NAME} "
        "-groups X25519MLKEM768 -brief </dev/null"
    )
    assert "X25519MLKEM768" in handshake.stdout + handshake.stderr, handshake.stdout + handshake.stderr


def test_a_due_renewal_is_served_by_nginx_without_a_manual_step(deployment, operator, acme_root):
    app = deployment.machines["app"]
    before = served_certificate(app.private_ip, PUBLIC_NAME, acme_root).serial_number

    # What certbot's timer starts twice a day; Pebble's 20-day leaves are always due.
    app.check("systemctl start certbot.service")

    live = x509.load_pem_x509_certificate(app.read_bytes(f"{ACME_LIVE}/cert.pem"))
    assert live.serial_number != before, "certbot renewed the certificate"
    # `nginx -s reload` (the deploy hook's reload) only signals nginx: its new workers take the
    # new certificate a moment later.
    deadline = time.monotonic() + 15
    while served_certificate(app.private_ip, PUBLIC_NAME, acme_root).serial_number != live.serial_number:
        assert time.monotonic() < deadline, "nginx still serves the old certificate 15 s after the renewal"
        time.sleep(0.5)
    rerun = operator.pyinfra(deployment.admin_inventory, DEPLOYS["app"], args=("--limit", app.name))
    assert rerun.returncode == 0, rerun.output
    assert rerun.changed.get(app.name, []) == [], "a renewal done by certbot is not the deploy's to redo"


def test_a_config_nginx_t_refuses_is_never_loaded_by_the_renewal_hook_and_a_run_repairs_it(
    deployment, operator, acme_root
):
    app = deployment.machines["app"]
    app.check(f"echo 'this is not a directive' >> {NGINX_CONFIG}")

    hook = app.exec(DEPLOY_HOOK)

    assert hook.returncode != 0 and "nginx" in hook.stderr, hook.stdout + hook.stderr
    assert https_headers(app.private_ip, PUBLIC_NAME, acme_root)["strict-transport-security"] == "max-age=63072000"
    rerun = operator.pyinfra(deployment.admin_inventory, DEPLOYS["app"], args=("--limit", app.name))
    assert rerun.returncode == 0, rerun.output
    assert "The front's nginx.conf (checked by nginx -t)" in " ".join(rerun.changed.get(app.name, []))
    assert app.exec("nginx -t -q").returncode == 0


@pytest.fixture(scope="module")
def modern_front(deployment, operator, tmp_path_factory):
    """The front switched to the modern profile with the fleet CA's certificate, then back."""
    group_data = tmp_path_factory.mktemp("modern") / "group_data"
    shutil.copytree(operator.group_data, group_data)
    with (group_data / "app_servers.py").open("a") as data:
        data.write("tls_profile = 'modern'\ntls_certificates = 'internal'\n")
    app = deployment.machines["app"]
    limit = ("--limit", app.name)
    switched = operator.pyinfra(deployment.admin_inventory, DEPLOYS["app"], args=limit, group_data=group_data)
    fleet_bundle = tmp_path_factory.mktemp("fleet-ca") / "fleet-ca.pem"
    fleet_bundle.write_text(fleet_ca.trust_bundle(operator.ca_keys))
    try:
        yield switched, fleet_bundle
    finally:
        back = operator.pyinfra(deployment.admin_inventory, DEPLOYS["app"], args=limit)
        assert back.returncode == 0, back.output


def test_the_modern_profile_is_compliant_and_refuses_tls_1_2(deployment, modern_front):
    switched, fleet_bundle = modern_front
    assert switched.returncode == 0, switched.output
    app = deployment.machines["app"]
    result = sslyze("modern", app.private_ip, fleet_bundle)
    assert compliant(result), result.stdout[-3000:] + result.stderr[-2000:]
    with socket.create_connection((app.private_ip, 443), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            verified_context(fleet_bundle, ssl.TLSVersion.TLSv1_2).wrap_socket(raw, server_hostname=PUBLIC_NAME)
    assert "pyinfra-hardening" in served_certificate(app.private_ip, PUBLIC_NAME, fleet_bundle).issuer.rfc4514_string()


def test_without_the_front_the_application_gets_its_own_certificate_and_the_guides_redirects(fresh_fleet):
    fleet, operator = fresh_fleet
    app = fleet.start("app", operator.root_public_key)
    operator.write_group_data("app_servers", {"tls_front": False})

    run = operator.pyinfra(operator.inventory({"app": app}), DEPLOYS["app"])

    assert run.returncode == 0, run.output
    folder = DEFAULT_CONFIG_DIR
    modes = app.check(f"stat -c '%n %a %U:%G' {folder} {folder}/{APP_TLS_KEY} {folder}/{APP_TLS_CERTIFICATE}")
    assert modes.split("\n")[:3] == [
        f"{folder} 700 application:application",
        f"{folder}/{APP_TLS_KEY} 400 application:application",
        f"{folder}/{APP_TLS_CERTIFICATE} 400 application:application",
    ]
    assert "Permission denied" in app.exec(f"runuser -u nobody -- cat {folder}/{APP_TLS_KEY}").stderr
    leaf = x509.load_pem_x509_certificate(app.read_bytes(f"{folder}/{APP_TLS_CERTIFICATE}"))
    [authority] = x509.load_pem_x509_certificates(fleet_ca.trust_bundle(operator.ca_keys).encode())
    leaf.verify_directly_issued_by(authority)
    addresses = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in addresses.get_values_for_type(x509.IPAddress)] == [app.private_ip]
    assert app.exec("command -v nginx").returncode != 0, "no front"
    app.serve(3000)
    outsider = fleet.start("outsider", operator.root_public_key)
    assert outsider.reach(app.private_ip, 80) == "app:3000"
