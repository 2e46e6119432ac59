"""The audit trail alone, as a deploy of a user's own imports it (no firewall, no cron)."""

from pyinfra_hardening import audit_trail

audit_trail.audit_trail()
