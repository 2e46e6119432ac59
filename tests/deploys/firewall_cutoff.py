"""A firewall change that shuts SSH out (tests use it to show the rollback timer undoes it):
the project's own rules for the host, with nothing opened."""

from pyinfra import host

from pyinfra_hardening import firewall

plan = firewall.plan_for(host)
firewall.apply_firewall({family: firewall.ruleset(plan, family, opened=[]) for family in firewall.FAMILIES})
