"""The application's systemd service (``app_command``): run as its locked account, sandboxed as
``systemd-analyze security`` rates it, with the production config as its environment."""

from __future__ import annotations

import re

EXPOSURE_RE = re.compile(r"Overall exposure level for application\.service: (\d+\.\d+)")


def main_process(app) -> str:
    pid = app.check("systemctl show -P MainPID application").strip()
    assert pid != "0", app.exec("systemctl status application --no-pager").stdout
    return f"/proc/{pid}"


def test_systemd_rates_the_service_ok_with_an_exposure_of_two_or_less(deployment):
    app = deployment.machines["app"]
    rating = app.check("systemd-analyze security application.service --no-pager")
    exposure = float(EXPOSURE_RE.search(rating).group(1))
    print(f"systemd-analyze security application.service ({deployment.release}): {exposure}")
    assert exposure <= 2.0, rating


def test_the_service_runs_as_the_application_without_privileges(deployment):
    app = deployment.machines["app"]
    process = main_process(app)
    status = app.check(f"cat {process}/status")
    uid = app.check("id -u application").strip()
    assert re.search(rf"^Uid:\s+{uid}\s+{uid}\s+{uid}\s+{uid}$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
    assert re.search(r"^CapBnd:\s+0+$", status, re.M) and re.search(r"^CapEff:\s+0+$", status, re.M)
    # In its mount namespace the system is read-only but for its state folder, /tmp is its own.
    mounts = {line.split()[4]: line.split()[5] for line in app.check(f"cat {process}/mountinfo").splitlines()}
    assert mounts["/"].startswith("ro,") and mounts["/var/lib/application"].startswith("rw,"), mounts
    assert mounts["/tmp"].startswith("rw,"), mounts


def test_the_service_gets_the_production_config_as_its_environment(deployment):
    app, db = deployment.machines["app"], deployment.machines["db"]
    environment = app.check(f"tr '\\0' '\\n' < {main_process(app)}/environ").splitlines()
    assert f"DB_HOST={db.private_ip}" in environment
    assert any(line.startswith("DB_PASSWORD=") for line in environment)
