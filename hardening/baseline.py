"""What every role gets: clock, password quality, admins, sudo rules, a locked root, SSH, and
an alert for every SSH login."""

from __future__ import annotations

from pyinfra.api import deploy

from . import accounts, login_alerts, passwords, ssh, sudo, timesync
from .settings import Settings


@deploy("Baseline")
def baseline(settings: Settings):
    timesync.time_sync(settings)
    passwords.password_quality(settings)
    accounts.admin_users(settings)
    sudo.managed_sudoers(settings)
    accounts.lock_root(settings)
    ssh.harden_ssh(settings)  # after the admins exist: its probe logs in as one
    login_alerts.login_alerts(settings)  # after SSH: its pattern follows the SSH settings
