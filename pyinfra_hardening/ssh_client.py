"""The operator's side of guide 3.8, done the safer way: an ``~/.ssh/config`` snippet that
reaches database and backup servers by ProxyJump through an app server, instead of carrying a
forwarded agent (which root on the app server could use) from host to host.

    python -m pyinfra_hardening.ssh_client inventories/prod.py --user alice [--write ~/.ssh/config.d/prod]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyinfra.api import Inventory

from . import compat
from .fleet import APP_SERVERS, BACKUP_SERVERS, DB_SERVERS


def ssh_config(inventory: Inventory, user: str) -> str:
    """Host blocks: app servers by their own address, inner servers by private IP via an app server."""
    jump_hosts = inventory.get_group(APP_SERVERS, [])
    if not jump_hosts:
        raise ValueError(f"the inventory has no {APP_SERVERS} to jump through")
    blocks = ["# Written by pyinfra-hardening: inner servers are reached through an app server."]
    for host in jump_hosts:
        blocks.append(_block(host.name, host.data.get("ssh_hostname") or host.name, user, host.data.get("ssh_port")))
    for group in (DB_SERVERS, BACKUP_SERVERS):
        for host in inventory.get_group(group, []):
            address = host.data.get("private_ip") or host.data.get("ssh_hostname") or host.name
            blocks.append(_block(host.name, address, user, None, jump=jump_hosts[0].name))
    return "\n\n".join(blocks) + "\n"


def _block(name: str, address: str, user: str, port: int | None, jump: str | None = None) -> str:
    lines = [f"Host {name}", f"    HostName {address}", f"    User {user}"]
    if port:
        lines.append(f"    Port {port}")
    if jump:
        lines.append(f"    ProxyJump {jump}")
    lines.append("    ForwardAgent no")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inventory", type=Path)
    parser.add_argument("--user", required=True, help="your admin login")
    parser.add_argument("--write", type=Path, help="write the snippet to this file instead of printing it")
    options = parser.parse_args(argv)
    # pyinfra's own loader: group_data beside the inventory counts, as in a run.
    snippet = ssh_config(compat.load_inventory(str(options.inventory)), options.user)
    if options.write:
        options.write.parent.mkdir(parents=True, exist_ok=True)
        options.write.write_text(snippet)
        print(f"wrote {options.write}; add 'Include {options.write}' to ~/.ssh/config", file=sys.stderr)
    else:
        print(snippet, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
