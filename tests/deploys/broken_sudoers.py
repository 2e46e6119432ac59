"""Fault injection: try to land a sudoers drop-in with a syntax error over the managed one."""

from hardening.files import validated_file
from hardening.sudo import MANAGED_DROP_IN, SUDOERS_VALIDATOR

validated_file(
    name="Land a broken sudoers drop-in",
    dest=MANAGED_DROP_IN,
    content="%sudo ALL=(ALL:ALL ALL\n",  # unbalanced parenthesis: visudo rejects it
    validator=SUDOERS_VALIDATOR,
    mode="440",
)
