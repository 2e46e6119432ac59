"""Fault injection: try to land an sshd drop-in that sshd cannot parse over the managed one."""

from pyinfra import host

from hardening.files import validated_file
from hardening.settings import settings_for
from hardening.ssh import MANAGED_DROP_IN, sshd_validator

settings_for(host)  # as every deploy does: connects through sudo with the stored password

validated_file(
    name="Land a broken sshd drop-in",
    dest=MANAGED_DROP_IN,
    content="PasswordAuthentication yes\nPermitRootLogin maybe-on-tuesdays\n",
    validator=sshd_validator(MANAGED_DROP_IN, "alice", []),
)
