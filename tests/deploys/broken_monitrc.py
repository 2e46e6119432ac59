"""Fault injection: try to land a monitrc that Monit cannot parse over the managed one."""

from pyinfra import host

from pyinfra_hardening import login_alerts
from pyinfra_hardening.managed_files import validated_file

alerts = login_alerts.alerts_of(host)  # as the login alerts deploy does: sudo with the stored password
assert alerts is not None

validated_file(
    name="Land a broken monitrc",
    dest=login_alerts.MONITRC,
    content=login_alerts.monitrc(alerts, login_alerts.login_pattern(True, False), False)
    + "check nonsense with nothing\n",
    validator=login_alerts.MONIT_VALIDATOR,
    mode="600",
    secret_pattern=login_alerts.MONITRC_SECRET,
)
