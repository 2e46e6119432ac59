"""The private network encrypted (guide 4.2) and the application's production config (4.5), seen
from the app server, the database server, another user and a sniffer on the network."""

from __future__ import annotations

import datetime
import json
import shlex
import socket
import threading
import time

import pytest
from cryptography import x509

from harness.certificates import another_ca
from harness.operator import ADMIN, APP_TLS, DEPLOYS
from pyinfra_hardening import database
from pyinfra_hardening.application import DEFAULT_CONFIG_DIR

CONFIG = f"{DEFAULT_CONFIG_DIR}/production.env"
MARKER = "tls-marker-row-4711"
# How each release's MariaDB turns a plaintext login away: 10.11 as a denied login, 11.8 by name.
PLAINTEXT_REFUSAL = {
    "debian12": "Access denied for user '{user}'",
    "debian13": "Connections using insecure transport are prohibited while --require_secure_transport=ON",
}


def production_config(app) -> dict[str, str]:
    """The config as the application reads it (as its own user)."""
    text = app.check(f"runuser -u application -- cat {CONFIG}")
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def mariadb_from_app(app, options: str, sql: str, config: dict[str, str], run_as: str = "application"):
    return app.exec(
        f"runuser -u {run_as} -- env MYSQL_PWD={shlex.quote(config['DB_PASSWORD'])} mariadb --batch "
        f"--skip-column-names {options} -h {config['DB_HOST']} -P {config['DB_PORT']} -u {config['DB_USER']} "
        f"{config['DB_NAME']} -e {shlex.quote(sql)}"
    )


def verified(config: dict[str, str], certificate: bool = True) -> str:
    client = f"--ssl-cert={config['DB_SSL_CERT']} --ssl-key={config['DB_SSL_KEY']} " if certificate else ""
    return f"--ssl-ca={config['DB_SSL_CA']} {client}--ssl-verify-server-cert"


@pytest.fixture(scope="module")
def notes(deployment):
    deployment.machines["db"].check(
        'mariadb application -e "CREATE TABLE IF NOT EXISTS tls_notes (id INT PRIMARY KEY, body VARCHAR(100))"'
    )
    return "tls_notes"


def test_the_config_holds_the_database_and_its_tls_files(deployment, operator):
    app, db = deployment.machines["app"], deployment.machines["db"]
    config = production_config(app)
    redis_password = (operator.secrets / "app-redis-password").read_text().strip()
    assert config == {
        "REDIS_HOST": db.private_ip,  # the database server is the session store too
        "REDIS_PORT": "6379",
        "REDIS_USER": "application",
        "REDIS_PASSWORD": redis_password,
        "REDIS_TLS_CA": APP_TLS[0],
        "REDIS_TLS_CERT": APP_TLS[1],
        "REDIS_TLS_KEY": APP_TLS[2],
        "DB_HOST": db.private_ip,
        "DB_PORT": "3306",
        "DB_NAME": "application",
        "DB_USER": "application",
        "DB_PASSWORD": (operator.secrets / "app-database-password").read_text().strip(),
        "DB_SSL_CA": APP_TLS[0],
        "DB_SSL_CERT": APP_TLS[1],
        "DB_SSL_KEY": APP_TLS[2],
    }


def test_the_config_and_the_key_are_the_applications_alone(deployment):
    app = deployment.machines["app"]
    assert app.check(f"stat -c '%U %G %a' {DEFAULT_CONFIG_DIR}").split() == ["application", "application", "700"]
    listing = app.check(f"find {DEFAULT_CONFIG_DIR} -mindepth 1 -printf '%f %u %g %m\\n' | sort").splitlines()
    assert listing == [
        "database-client.key application application 400",
        "database-client.pem application application 400",
        "production.env application application 400",
    ]
    # An admin without sudo, the web server's user and anyone else are turned away.
    for user in (ADMIN, "www-data", "nobody"):
        for path in (CONFIG, APP_TLS[2]):
            refused = app.exec(f"runuser -u {user} -- cat {path}")
            assert refused.returncode != 0 and "Permission denied" in refused.stderr, (user, path)


def test_the_keys_made_on_the_hosts_never_show_in_any_output(deployment):
    """The hosts' TLS keys stay where they were made: not in the dry run's diff, the first run or
    the admin's -v re-runs."""
    keys = {"db": database.SERVER_KEY, "app": APP_TLS[2]}
    outputs = [deployment.dry.output, deployment.first.output, *(run.output for run in deployment.second.values())]
    for role, path in keys.items():
        body = [line for line in deployment.machines[role].check(f"cat {path}").splitlines() if "-----" not in line]
        assert body
        for output in outputs:
            assert not any(line in output for line in body), (role, path)


def test_the_configs_values_open_a_verified_tls_connection_that_reads_and_writes(deployment, notes):
    app = deployment.machines["app"]
    config = production_config(app)
    done = mariadb_from_app(
        app,
        verified(config),
        f"REPLACE INTO {notes} VALUES (1, 'first'); SELECT body FROM {notes} WHERE id = 1; "
        f"DELETE FROM {notes} WHERE id = 1; SHOW SESSION STATUS LIKE 'Ssl_version'",
        config,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["first", "Ssl_version", "TLSv1.3"]


def test_a_plaintext_client_is_refused(deployment):
    app, db = deployment.machines["app"], deployment.machines["db"]
    config = production_config(app)
    refused = mariadb_from_app(app, "--skip-ssl", "SELECT 1", config)
    words = PLAINTEXT_REFUSAL[deployment.release]
    assert refused.returncode != 0 and words.format(user="application") in refused.stderr, refused.stderr
    # Nor does any other account: an account of the test's own, with no certificate required,
    # gets in with its password over TLS only.
    probe = f"'plain_probe'@'{app.private_ip}'"
    db.check(f"mariadb -e \"CREATE USER {probe} IDENTIFIED BY 'Probe-Pass-42'\"")
    try:
        plain = app.exec(f"mariadb --skip-ssl -h {db.private_ip} -u plain_probe -pProbe-Pass-42 -e 'SELECT 1'")
        over_tls = app.exec(
            f"mariadb --ssl-ca={APP_TLS[0]} --ssl-verify-server-cert -h {db.private_ip} -u plain_probe "
            "-pProbe-Pass-42 -e 'SELECT 1'"
        )
    finally:
        db.check(f'mariadb -e "DROP USER {probe}"')
    assert plain.returncode != 0 and words.format(user="plain_probe") in plain.stderr, plain.stderr
    assert over_tls.returncode == 0, over_tls.stderr


def test_a_client_without_a_certificate_is_refused(deployment):
    app = deployment.machines["app"]
    config = production_config(app)
    refused = mariadb_from_app(app, verified(config, certificate=False), "SELECT 1", config)
    assert refused.returncode != 0 and "Access denied for user 'application'" in refused.stderr, refused.stderr


def test_a_client_that_trusts_another_ca_refuses_the_server(deployment):
    app = deployment.machines["app"]
    config = production_config(app)
    app.exec("cat > /tmp/other-ca.pem && chmod 644 /tmp/other-ca.pem", stdin=another_ca())
    options = verified(config).replace(f"--ssl-ca={config['DB_SSL_CA']}", "--ssl-ca=/tmp/other-ca.pem")
    refused = mariadb_from_app(app, options, "SELECT 1", config)
    # OpenSSL's words for a chain that ends in a CA the client does not trust.
    assert refused.returncode != 0 and "TLS/SSL error: self-signed certificate in certificate chain" in refused.stderr


@pytest.mark.parametrize(
    "client, accepted",
    [
        ("-tls1_3", True),
        ("-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256", True),
        ("-tls1_2 -cipher AES128-SHA256:AES256-GCM-SHA384", False),  # no forward secrecy
        ("-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA", False),  # CBC
        ("-tls1_1 -cipher DEFAULT@SECLEVEL=0", False),
    ],
)
def test_the_server_takes_tls_1_2_and_later_with_strong_ciphers_only(deployment, client, accepted):
    app, db = deployment.machines["app"], deployment.machines["db"]
    handshake = app.exec(
        f"openssl s_client -starttls mysql -connect {db.private_ip}:3306 -CAfile {APP_TLS[0]} "
        f"-verify_return_error {client} </dev/null"
    )
    assert (handshake.returncode == 0 and "Verify return code: 0 (ok)" in handshake.stdout) == accepted, (
        handshake.stdout[-600:] + handshake.stderr[-600:]
    )


def test_a_sniffer_on_the_network_sees_no_sql_and_no_rows(deployment, notes):
    """Every frame to and from the database server, captured on its cable (the host's end of
    its virtual ethernet pair), as a switch's mirror port would. The server's greeting, sent
    before TLS starts, shows the capture sees payloads."""
    app, db = deployment.machines["app"], deployment.machines["db"]
    db.check(f"mariadb application -e \"REPLACE INTO {notes} VALUES (2, '{MARKER}')\"")
    config = production_config(app)
    with sniffing(cable_of(db)) as frames:
        read = mariadb_from_app(app, verified(config), f"SELECT body FROM {notes} WHERE id = 2", config)
    assert read.returncode == 0 and read.stdout.strip() == MARKER, read.stderr
    captured = b"".join(frames)
    assert b"MariaDB" in captured, "the capture saw no MariaDB traffic"
    assert MARKER.encode() not in captured
    assert b"SELECT body" not in captured and b"tls_notes" not in captured
    assert config["DB_PASSWORD"].encode() not in captured


def test_a_leaf_close_to_expiry_is_renewed_and_mariadb_loads_it_without_a_restart(deployment, operator):
    db = deployment.machines["db"]
    started = db.check("systemctl show -P ExecMainStartTimestampMonotonic mariadb")
    request = db.check(f"openssl req -new -key {database.SERVER_KEY} -subj /CN=db")
    short = operator.sign(request, db, client=False, days=10)
    db.exec(f"cat > {database.SERVER_CERTIFICATE}", stdin=short)

    rerun = operator.pyinfra(deployment.admin_inventory, DEPLOYS["db"])

    assert rerun.returncode == 0, rerun.output
    # A run that changed the host ends with AIDE recording it, so the change raises no alert.
    assert sorted(name.split(" | ")[-1] for name in rerun.changed[db.name]) == [
        "AIDE records the host's files",
        "MariaDB loads its new certificate or trusted CAs",
        "mysql's server certificate from the fleet CA",
    ]
    served = served_certificate(deployment.machines["app"], db)
    assert served.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=80)
    assert db.check("systemctl show -P ExecMainStartTimestampMonotonic mariadb") == started
    assert operator.pyinfra(deployment.admin_inventory, DEPLOYS["db"]).changed == {}


def test_the_json_config_holds_the_same_values(deployment, operator):
    """``app_config_format = 'json'``: the same values in production.json, the .env file gone."""
    app = deployment.machines["app"]
    before = production_config(app)
    inventory = operator.inventory(
        deployment.machines, user=ADMIN, name=f"json-{deployment.release}", data={"app_config_format": "json"}
    )
    try:
        switched = operator.pyinfra(inventory, DEPLOYS["app"])
        assert switched.returncode == 0, switched.output
        text = app.check(f"runuser -u application -- cat {DEFAULT_CONFIG_DIR}/production.json")
        assert app.exec(f"test -e {CONFIG}").returncode != 0
        settings = json.loads(text)["database"]
        assert settings == {
            "host": before["DB_HOST"],
            "port": 3306,
            "name": before["DB_NAME"],
            "user": before["DB_USER"],
            "password": before["DB_PASSWORD"],
            "ssl_ca": before["DB_SSL_CA"],
            "ssl_cert": before["DB_SSL_CERT"],
            "ssl_key": before["DB_SSL_KEY"],
        }
        assert app.check(f"stat -c '%U %a' {DEFAULT_CONFIG_DIR}/production.json").split() == ["application", "400"]
    finally:
        back = operator.pyinfra(deployment.admin_inventory, DEPLOYS["app"])
        assert back.returncode == 0, back.output
    assert production_config(app) == before


# --- helpers -------------------------------------------------------------------------------------


def served_certificate(client, db) -> x509.Certificate:
    shown = client.check(
        f"openssl s_client -starttls mysql -connect {db.private_ip}:3306 </dev/null 2>/dev/null | openssl x509"
    )
    return x509.load_pem_x509_certificate(shown.encode())


def cable_of(machine) -> str:
    """The host's end of ``machine``'s network interface (a bridge's own interface sees only
    what is sent to the host)."""
    return socket.if_indextoname(int(machine.check("cat /sys/class/net/eth0/iflink")))


class sniffing:
    """Capture every frame on ``interface`` (raw packet socket, root only) while the block runs."""

    def __init__(self, interface: str):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self.sock.bind((interface, 0))
        self.sock.settimeout(0.2)
        self.frames: list[bytes] = []
        self.running = True
        self.thread = threading.Thread(target=self._capture, daemon=True)

    def _capture(self) -> None:
        while self.running:
            try:
                self.frames.append(self.sock.recv(65535))
            except TimeoutError:
                continue

    def __enter__(self) -> list[bytes]:
        self.thread.start()
        return self.frames

    def __exit__(self, *_) -> None:
        time.sleep(0.5)  # the last frames of the session's close
        self.running = False
        self.thread.join()
        self.sock.close()
