"""A firewall change that shuts SSH out (tests use it to show the rollback timer undoes it):
the project's own rules for the host, with nothing opened."""

from pyinfra import host

from hardening import firewall
from hardening.settings import settings_for

settings = settings_for(host)
firewall.apply_firewall(
    settings, {family: firewall.ruleset(settings, family, opened=[]) for family in firewall.FAMILIES}
)
