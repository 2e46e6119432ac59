"""A user's own deploy that takes the fleet CA's pieces alone: the trust bundle and one server
leaf whose key is made on the host."""

from pyinfra import host

from pyinfra_hardening import fleet_tls
from pyinfra_hardening.settings import settings_for

fleet_tls.trust_bundle()
fleet_tls.leaf_certificate(
    name="A server certificate from the fleet CA",
    key="/etc/fleet-tls/server.key",
    certificate="/etc/fleet-tls/server.crt",
    user="root",
    group="root",
    names=[host.name],
    addresses=[host.data.private_ip],
    client=False,
    ca_keys=settings_for(host, fleet_tls.FleetTlsSettings).fleet_ca_keys,
)
