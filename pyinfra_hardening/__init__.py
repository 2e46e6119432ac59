"""pyinfra-hardening: the server half of the Guide to User Data Security, as pyinfra deploys."""
