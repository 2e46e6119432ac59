"""A user's own deploy that takes one concern from the package: admins and SSH, nothing else
(no login alerts, no firewall). Its host data holds keys of the user's own."""

from pyinfra import host

from pyinfra_hardening import accounts, ssh

if "web" in host.groups:
    accounts.admin_users()
    ssh.harden()
