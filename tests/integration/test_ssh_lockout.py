"""Faults injected into the SSH rollout: the operator must always still get in.

Each test hardens its own fresh machine (Debian 12) with its own operator and secret store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import paramiko
import pyotp
import pytest

from harness.operator import ADMIN, DEPLOYS, REPO, make_key
from harness.provider import act_like_a_provider_image
from harness.ssh import login

STAGE_ONE_MARKER = "Password and root login stay as they were"


@pytest.fixture
def fresh(fresh_fleet):
    fleet, operator = fresh_fleet
    machine = fleet.start("app", operator.root_public_key)
    act_like_a_provider_image(machine, "app")
    return machine, operator, operator.inventory({"app": machine})


def effective(machine, keyword: str) -> str:
    return machine.check(f"sshd -T -C user={ADMIN},host=localhost,addr=127.0.0.1 | grep -i '^{keyword} '").strip()


def test_a_failed_probe_leaves_password_and_root_login_and_roots_password_as_they_were(fresh):
    machine, operator, inventory = fresh
    # What no data can show: the host's own sshd_config turns alice away (sshd adds up DenyUsers).
    machine.check(f"sed -i '1i DenyUsers {ADMIN}' /etc/ssh/sshd_config")
    root_password = machine.check("getent shadow root | cut -d: -f2")

    run = operator.pyinfra(inventory, DEPLOYS["app"])

    assert run.returncode != 0
    assert "a fresh SSH login as admin alice failed" in run.output
    assert "root's password and passwordless sudo were left as they were" in run.output
    assert effective(machine, "passwordauthentication") == "passwordauthentication yes"
    assert effective(machine, "permitrootlogin") == "permitrootlogin without-password"
    assert machine.check("getent shadow root | cut -d: -f2") == root_password
    with login(machine, "root", key=operator.root_key) as session:
        assert session.run("true").status == 0


def test_a_probe_key_that_is_not_the_admins_is_refused_before_any_change(fresh):
    machine, operator, inventory = fresh
    stranger = operator.home / "not_alices_key"
    make_key(stranger, "stranger@test")
    group_data = operator.write_group_data(
        "all", {**operator.base_group_data(), "ssh_probe_key": str(stranger)}, folder=operator.home / "probe_gd"
    )
    before = machine.check("cat /etc/passwd /etc/ssh/sshd_config; ls /etc/ssh/sshd_config.d")

    run = operator.pyinfra(inventory, DEPLOYS["app"], group_data=group_data)

    assert run.returncode != 0
    assert "ssh_probe_key = " in run.output and "is not the private half of any of alice's ssh_keys" in run.output
    assert "nothing was changed on any host" in run.output
    assert machine.check("cat /etc/passwd /etc/ssh/sshd_config; ls /etc/ssh/sshd_config.d") == before


def test_a_wrong_totp_secret_in_the_store_changes_nothing(fresh):
    machine, operator, inventory = fresh
    assert operator.pyinfra(inventory, DEPLOYS["app"]).returncode == 0
    secret_file = operator.secrets / f"admin-{ADMIN}.totp-secret"
    right_secret = secret_file.read_text()
    on_host = machine.check(f"head -n1 /home/{ADMIN}/.google_authenticator")
    as_admin = operator.inventory({"app": machine}, user=ADMIN, name="as-admin")

    secret_file.write_text(pyotp.random_base32(32) + "\n")
    refused = operator.pyinfra(as_admin, DEPLOYS["app"])

    assert refused.returncode != 0
    assert "Authentication error" in refused.output
    assert machine.check(f"head -n1 /home/{ADMIN}/.google_authenticator") == on_host
    secret_file.write_text(right_secret)
    again = operator.pyinfra(as_admin, DEPLOYS["app"])
    assert again.returncode == 0 and again.changed == {}, again.output


def test_a_run_killed_between_the_stages_can_simply_be_run_again(fresh):
    machine, operator, inventory = fresh
    # Hold the run in stage 1 long enough to kill it: until stage 1 lands, the store keeps saying
    # that three logins just happened, so the probe's TOTP login must wait for the rate limit.
    used_windows = operator.secrets / "totp-used-windows.json"
    landed = threading.Event()

    def rate_limit_until_stage_one() -> None:
        while not landed.is_set():
            now = time.time()
            who = f"{ADMIN}@127.0.0.1:{machine.ssh_port}"
            used_windows.write_text(json.dumps({who: {"counter": int(now) // 30 + 1, "times": [now, now, now]}}))
            time.sleep(0.5)

    holder = threading.Thread(target=rate_limit_until_stage_one, daemon=True)
    holder.start()
    command, env = operator.pyinfra_command(inventory, DEPLOYS["app"], args=("-y",))
    run = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        # The OS baseline (packages, security updates, AIDE) comes first on a fresh host.
        deadline = time.monotonic() + 600
        while STAGE_ONE_MARKER not in machine.exec("cat /etc/ssh/sshd_config.d/00-hardening.conf").stdout:
            assert run.poll() is None, "the run ended before stage 1"
            assert time.monotonic() < deadline, "stage 1 never landed"
            time.sleep(0.2)
    finally:
        landed.set()
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        holder.join()

    with login(machine, "root", key=operator.root_key) as session:  # stage 1 keeps root's way in
        assert session.run("true").status == 0
    rerun = operator.pyinfra(inventory, DEPLOYS["app"])
    assert rerun.returncode == 0, rerun.output
    with pytest.raises(paramiko.AuthenticationException):
        login(machine, "root", key=operator.root_key)
    with login(machine, ADMIN, key=operator.admin_key, totp_secret=operator.totp_secret(ADMIN)) as session:
        assert session.run("whoami").stdout.strip() == ADMIN
