"""The operator's side of guide 3.8, done the safer way: an ``~/.ssh/config`` snippet that
reaches database and backup servers by ProxyJump through an app server, instead of carrying a
forwarded agent (which root on the app server could use) from host to host.

    python -m hardening.ssh_client inventories/prod.py --user alice [--write ~/.ssh/config.d/prod]
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

JUMP_GROUP = "app_servers"
INNER_GROUPS = ("db_servers", "backup_servers")


def _hosts(inventory: dict, group: str) -> list[tuple[str, dict]]:
    return [entry if isinstance(entry, tuple) else (entry, {}) for entry in inventory.get(group, [])]


def ssh_config(inventory: dict, user: str) -> str:
    """Host blocks: app servers by their own address, inner servers by private IP via an app server."""
    jump_hosts = _hosts(inventory, JUMP_GROUP)
    if not jump_hosts:
        raise ValueError(f"the inventory has no {JUMP_GROUP} to jump through")
    jump_name = jump_hosts[0][0]
    blocks = ["# Written by pyinfra-hardening: inner servers are reached through an app server."]
    for name, data in jump_hosts:
        blocks.append(_block(name, data.get("ssh_hostname", name), user, data.get("ssh_port")))
    for group in INNER_GROUPS:
        for name, data in _hosts(inventory, group):
            address = data.get("private_ip") or data.get("ssh_hostname", name)
            blocks.append(_block(name, address, user, None, jump=jump_name))
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
    snippet = ssh_config(runpy.run_path(str(options.inventory)), options.user)
    if options.write:
        options.write.parent.mkdir(parents=True, exist_ok=True)
        options.write.write_text(snippet)
        print(f"wrote {options.write}; add 'Include {options.write}' to ~/.ssh/config", file=sys.stderr)
    else:
        print(snippet, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
