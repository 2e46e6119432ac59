"""Remote logging, seen from outside: what the app and database servers log arrives on the
backup server, in a file per sender; nobody else gets a line in, in clear or over TLS without a
leaf of the fleet CA, and an outsider finds the port closed."""

from __future__ import annotations

import shlex
import time
import uuid

from pyinfra_hardening import fleet_tls, remote_logging

PORT = 6514


def arrived(deployment, sender: str, marker: str) -> bool:
    backup = deployment.machines["backup"]
    path = f"{remote_logging.REMOTE_LOG_DIR}/{deployment.machines[sender].private_ip}.log"
    return backup.exec(f"grep -qF {shlex.quote(marker)} {path}").returncode == 0


def test_what_each_host_logs_arrives_on_the_backup_server_in_its_own_file(deployment):
    for sender in ("app", "db"):
        marker = f"remote-logging-{sender}-{uuid.uuid4().hex}"
        # A sender whose connection the server's restart broke loses the line sent into it
        # (plain TCP syslog) and reconnects within rsyslog's 30 s retry: log until it is there.
        deadline = time.monotonic() + 120
        while not arrived(deployment, sender, marker):
            assert time.monotonic() < deadline, f"{marker} never reached the backup server"
            deployment.machines[sender].check(f"logger -p auth.notice {marker}")
            time.sleep(5)
    folder = deployment.machines["backup"].check(f"stat -c '%U:%G %a' {remote_logging.REMOTE_LOG_DIR}").strip()
    assert folder == "root:adm 750"


def test_a_host_of_the_fleet_without_a_fleet_leaf_gets_no_line_in(deployment):
    backup, db = deployment.machines["backup"], deployment.machines["db"]
    tries = {
        "clear": f"timeout 5 bash -c 'cat > /dev/tcp/{backup.private_ip}/{PORT}'",
        "tls-without-certificate": (
            f"timeout 5 openssl s_client -quiet -connect {backup.private_ip}:{PORT} -CAfile {fleet_tls.TRUST_BUNDLE}"
        ),
        "tls-with-its-own-ca": (
            "cd /tmp && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=db "
            "-keyout rogue.key -out rogue.pem -days 1 2>/dev/null && "
            f"timeout 5 openssl s_client -quiet -connect {backup.private_ip}:{PORT} -CAfile {fleet_tls.TRUST_BUNDLE} "
            "-cert rogue.pem -key rogue.key"
        ),
    }
    refusals = {}
    for kind, command in tries.items():
        marker = f"injected-{kind}-{uuid.uuid4().hex}"
        sent = db.exec(f"printf '<13>Dec  4 20:00:00 evil {marker}\\n' | {command}")
        refusals[kind] = sent.stdout + sent.stderr
        time.sleep(2)
        assert not arrived(deployment, "db", marker), kind
    # The handshake itself refused the two TLS tries.
    assert "alert certificate required" in refusals["tls-without-certificate"]
    assert "alert unknown ca" in refusals["tls-with-its-own-ca"]


def test_an_outsider_finds_the_log_port_closed(deployment):
    backup = deployment.machines["backup"]
    assert deployment.machines["app"].connects(backup.private_ip, PORT)
    assert not deployment.outsider.connects(backup.private_ip, PORT)
