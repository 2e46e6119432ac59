"""Fresh machines as providers hand them out: a root password and passwordless sudo."""

from __future__ import annotations

from .containers import Machine
from .operator import ADMIN

PROVIDER_USER = "debian"
PROVIDER_ROOT_PASSWORD = "Provider-Root-Pass-7"
# Files whose content says whether a run touched a host.
FINGERPRINTED = "/etc/passwd /etc/shadow /etc/group /etc/sudoers /etc/pam.d/common-password"


def act_like_a_provider_image(machine: Machine, role: str) -> None:
    """What cloud images ship and the guide warns about: a root password, passwordless sudo,
    password logins over SSH."""
    machine.check(
        f"echo 'root:{PROVIDER_ROOT_PASSWORD}' | chpasswd"
        f" && useradd -m -s /bin/bash -G sudo {PROVIDER_USER}"
        f" && echo '{PROVIDER_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users"
        " && chmod 440 /etc/sudoers.d/90-cloud-init-users"
        " && sed -i 's/^%sudo.*/%sudo\tALL=(ALL:ALL) NOPASSWD: ALL/' /etc/sudoers"
        " && visudo -c >/dev/null"
        # cloud-init turns password logins on in a drop-in that sorts before the main file.
        " && echo 'PasswordAuthentication yes' > /etc/ssh/sshd_config.d/50-cloud-init.conf"
    )
    if role == "app":
        # An admin account that already exists, with a group of its own the deploy must keep.
        machine.check(f"useradd -m -s /bin/sh -G staff {ADMIN}")


def fingerprint(machine: Machine) -> str:
    return machine.check(
        f"cat {FINGERPRINTED} | sha256sum; ls -la /etc/sudoers.d; dpkg-query -W | sha256sum; "
        "iptables-save | grep -v '^#'; ip6tables-save | grep -v '^#'; ls -la /etc/iptables 2>&1 || true"
    )
