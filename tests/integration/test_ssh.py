"""SSH as an attacker and as an admin meet it, checked from outside with paramiko."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest
from ssh_audit.builtin_policies import BUILTIN_POLICIES

from harness.operator import ADMIN, ADMIN_PASSWORD, OTHER_ADMIN, ROLE_GROUPS
from harness.ssh import connect, key_only, login
from pyinfra_hardening.ssh import CRYPTO_PROFILES, for_this_client
from pyinfra_hardening.totp import FILE_OPTIONS, fresh_code, peer_label

# As served to the paramiko pyinfra uses here: ssh-audit's policy unmodified where it speaks it.
RELEASE_PROFILES = {
    release: for_this_client(CRYPTO_PROFILES[("Debian", major)])
    for release, major in (("debian12", 12), ("debian13", 13))
}
NO_KEY_USER, NO_KEY_PASSWORD = "nokey", "No-Key-Pass-2024"
PLAIN_USER, PLAIN_TOTP_SECRET = "dana", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def policy_argument(profile, folder: Path) -> str:
    """ssh-audit's built-in policy by name; with added key exchanges, the same policy written out
    with only those added, so every other check stays the built-in one."""
    if not profile.added_kex:
        return profile.policy
    builtin = BUILTIN_POLICIES[profile.policy]
    kex = [k for k in builtin["kex"] if k not in ("ext-info-s", "kex-strict-s-v00@openssh.com")]
    extensions = [k for k in builtin["kex"] if k not in kex]
    lines = {
        "name": f'"{profile.policy} + {", ".join(profile.added_kex)}"',
        "version": builtin["version"],
        "host keys": ", ".join(builtin["host_keys"]),
        "optional host keys": ", ".join(builtin["optional_host_keys"]),
        "key exchanges": ", ".join([*kex, *profile.added_kex, *extensions]),
        "ciphers": ", ".join(builtin["ciphers"]),
        "macs": ", ".join(builtin["macs"]),
        "host_key_sizes": json.dumps(builtin["hostkey_sizes"]),
        "dh_modulus_sizes": json.dumps(builtin["dh_modulus_sizes"]),
        "allow_hostkey_subset_and_reordering": str(builtin.get("allow_hostkey_subset_and_reordering", False)).lower(),
    }
    path = folder / "policy.txt"
    path.write_text("".join(f"{key} = {value}\n" for key, value in lines.items()))
    return str(path)


def test_password_login_is_refused_even_with_the_right_password(deployment):
    with pytest.raises(paramiko.AuthenticationException):
        login(deployment.machines["app"], ADMIN, password=ADMIN_PASSWORD)


def test_root_login_is_refused_with_the_key_that_worked_before(deployment, operator):
    with pytest.raises(paramiko.AuthenticationException):
        login(deployment.machines["app"], "root", key=operator.root_key)


def test_a_user_without_a_key_is_refused(deployment, operator):
    machine = deployment.machines["db"]
    machine.check(
        f"id {NO_KEY_USER} 2>/dev/null || useradd -m {NO_KEY_USER}; echo '{NO_KEY_USER}:{NO_KEY_PASSWORD}' | chpasswd"
    )
    with pytest.raises(paramiko.AuthenticationException):
        login(machine, NO_KEY_USER, password=NO_KEY_PASSWORD)
    with pytest.raises(paramiko.AuthenticationException):
        login(machine, NO_KEY_USER, key=operator.admin_key)


def test_admin_key_alone_is_not_enough(deployment, operator):
    authenticated, still_needed = key_only(deployment.machines["app"], OTHER_ADMIN, operator.other_admin_key)
    assert not authenticated
    assert still_needed == ["keyboard-interactive"]


def test_admin_key_and_totp_code_log_in(admin_sessions):
    """The shared admin sessions logged in with key + a fresh code; each really runs commands."""
    for session in admin_sessions.values():
        assert session.run("whoami").stdout.strip() == ADMIN


def test_an_admin_jumps_through_the_app_server_to_an_inner_one(deployment, admin_sessions):
    """What ProxyJump does: a local forward from the app server to the db server's sshd."""
    db = deployment.machines["db"]
    channel = admin_sessions["app"].transport.open_channel("direct-tcpip", (db.private_ip, 22), ("127.0.0.1", 0))
    try:
        channel.settimeout(10)
        assert channel.recv(100).startswith(b"SSH-2.0-OpenSSH")
    finally:
        channel.close()


def test_no_one_may_open_a_tunnel_back_through_a_server(admin_sessions):
    """Remote forwards (ssh -R) are refused even to admins: only local ones, for ProxyJump."""
    with pytest.raises(paramiko.SSHException):
        admin_sessions["app"].transport.request_port_forward("127.0.0.1", 0)


def test_a_person_outside_the_admin_group_gets_no_tunnel_two_sessions_and_no_core_dumps(deployment, operator):
    """Someone with a login who is not an admin (key and TOTP of their own): the legal banner
    before authentication, no forward (not even the local one admins jump with), at most two
    sessions on one connection, and a core dump limit of 0 they cannot raise."""
    machine = deployment.machines["db"]
    home = f"/home/{PLAIN_USER}"
    machine.check(
        f"useradd -m -s /bin/bash {PLAIN_USER} && install -d -m 700 -o {PLAIN_USER} -g {PLAIN_USER} {home}/.ssh && "
        f"install -m 600 -o {PLAIN_USER} -g {PLAIN_USER} /home/{ADMIN}/.ssh/authorized_keys {home}/.ssh/"
    )
    machine.exec(
        f"umask 277 && cat > {home}/.google_authenticator && chown {PLAIN_USER}: {home}/.google_authenticator",
        stdin="\n".join([PLAIN_TOTP_SECRET, *FILE_OPTIONS]) + "\n",
    )
    try:
        # paramiko keeps the banner of the last authentication step alone: the key's, here.
        transport = connect(machine)
        try:
            transport.auth_publickey(PLAIN_USER, paramiko.PKey.from_path(operator.admin_key))
            banner = transport.get_banner()
        finally:
            transport.close()
        assert banner is not None and banner.decode().strip() == machine.check("cat /etc/issue.net").strip()
        with login(machine, PLAIN_USER, key=operator.admin_key, totp_secret=PLAIN_TOTP_SECRET) as session:
            with pytest.raises(paramiko.ChannelException):
                session.transport.open_channel("direct-tcpip", (machine.private_ip, 22), ("127.0.0.1", 0))
            held = [session.transport.open_session(timeout=10) for _ in range(2)]
            with pytest.raises(paramiko.ChannelException):
                session.transport.open_session(timeout=10)
            # In one of the two: sshd's session went through PAM's limits.
            held[0].exec_command("ulimit -c && ulimit -c unlimited")
            shown, status = held[0].makefile("rb").read().decode(), held[0].recv_exit_status()
            assert shown.strip() == "0" and status != 0, (shown, status)
    finally:
        machine.check(f"pkill -u {PLAIN_USER} || true; userdel -r {PLAIN_USER} 2>/dev/null || userdel {PLAIN_USER}")


def test_wrong_and_replayed_codes_are_refused(deployment, operator):
    machine = deployment.machines["backup"]
    secret = operator.totp_secret(OTHER_ADMIN)
    code = fresh_code(secret, peer_label(OTHER_ADMIN, ("127.0.0.1", machine.ssh_port)))
    with login(machine, OTHER_ADMIN, key=operator.other_admin_key, code=code) as session:
        assert session.run("true").status == 0
    with pytest.raises(paramiko.AuthenticationException):
        login(machine, OTHER_ADMIN, key=operator.other_admin_key, code=code)  # the same code again
    wrong = f"{(int(code) + 500000) % 1000000:06d}"
    with pytest.raises(paramiko.AuthenticationException):
        login(machine, OTHER_ADMIN, key=operator.other_admin_key, code=wrong)


def test_a_broken_sshd_candidate_never_lands_and_sshd_keeps_serving(deployment, operator, admin_sessions):
    machine = deployment.machines["app"]
    live = "/etc/ssh/sshd_config.d/00-hardening.conf"
    before = machine.check(f"sha256sum {live}")

    run = operator.pyinfra(deployment.admin_inventory, "tests/deploys/broken_sshd.py", args=("--limit", machine.name))

    assert run.returncode != 0 and run.failed, run.output
    assert "failed validation; the live file was left as it was" in run.output
    assert machine.check(f"sha256sum {live}") == before
    assert admin_sessions["app"].run("sudo -S -k -p '' sshd -t", stdin=ADMIN_PASSWORD + "\n").status == 0
    authenticated, still_needed = key_only(machine, OTHER_ADMIN, operator.other_admin_key)
    assert still_needed == ["keyboard-interactive"], "sshd stopped serving the hardened config"


# Last in this module: its many unauthenticated connections earn a short OpenSSH 10 penalty.
@pytest.mark.parametrize("role", list(ROLE_GROUPS))
def test_sshd_passes_ssh_audit_hardened_policy(deployment, role, tmp_path):
    ssh_audit = Path(sys.executable).with_name("ssh-audit")
    policy = policy_argument(RELEASE_PROFILES[deployment.release], tmp_path)
    result = subprocess.run(
        [str(ssh_audit), "-P", policy, "-p", str(deployment.machines[role].ssh_port), "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "Passed" in result.stdout, result.stdout
