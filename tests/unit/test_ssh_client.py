"""The ProxyJump snippet for the operator's ~/.ssh/config, read back by OpenSSH itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def effective_client_config(config: Path, host: str) -> dict[str, str]:
    output = subprocess.run(["ssh", "-G", "-F", str(config), host], capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in output.splitlines() if " " in line)


def test_database_server_is_reached_by_proxyjump_through_the_app_server(tmp_path):
    snippet = tmp_path / "prod.conf"
    # As the README runs it (pyinfra's inventory loader patches the standard library: own process).
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pyinfra_hardening.ssh_client",
            str(REPO / "inventories" / "prod.py"),
            "--user",
            "alice",
            "--write",
            str(snippet),
        ],
        check=True,
        capture_output=True,
    )
    database = effective_client_config(snippet, "db1.example.com")
    assert database["hostname"] == "10.0.0.21"
    assert database["proxyjump"] == "app1.example.com"
    assert database["user"] == "alice"
    assert database["forwardagent"] == "no"
    app = effective_client_config(snippet, "app1.example.com")
    assert app["hostname"] == "app1.example.com" and "proxyjump" not in app
    assert effective_client_config(snippet, "backup1.example.com")["proxyjump"] == "app1.example.com"
