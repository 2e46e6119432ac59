"""Fault injection: try to land a monitrc that Monit cannot parse over the managed one."""

from pyinfra import host

from hardening import login_alerts
from hardening.files import validated_file
from hardening.settings import settings_for

settings = settings_for(host)

validated_file(
    name="Land a broken monitrc",
    dest=login_alerts.MONITRC,
    content=login_alerts.monitrc(settings) + "check nonsense with nothing\n",
    validator=login_alerts.MONIT_VALIDATOR,
    mode="600",
    secret_pattern=login_alerts.MONITRC_SECRET,
)
