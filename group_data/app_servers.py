"""Settings for application servers (the app_servers group); group_data/all.py has the rest.
"""


# Firewall
# app_tcp_ports = [80, 443, 3000, 3003]  # with tls_front = False: TCP ports the application serves to everyone, besides SSH (guide 3.11); with the front on, 80 and 443 alone are public
# app_port_redirects = {80: 3000, 443: 3003}  # with tls_front = False: public ports sent on to the unprivileged application (guide 3.11)

# Application
# app_user = 'application'  # locked account the application runs as: no home, no shell, no password (guide 4.1); never an admin's, root's or a system account's name
# app_config_dir = '/usr/local/application/config'  # where the production config and the database client's key and certificate live: app_user's alone (700, files 400; guide 4.5); written when the inventory has a db server
# app_command = None  # the command that starts the application, an absolute path first (like '/usr/bin/node /srv/app/server.js', outside /home); set, it runs as app_user in the sandboxed systemd service application.service (writable: /var/lib/application and /run/application only), with the .env config as its environment; None: no service
# app_config_format = 'env'  # the production config's format: 'env' (production.env, KEY=value lines) or 'json' (production.json, a "database" object)

# Public TLS
# tls_front = True  # an nginx front terminates TLS on 443 and proxies to the application on app_port; 80 only redirects to https; the application's own ports are not public (guide 4.2); False: the guide's model (80/443 redirected to the application, which gets a fleet CA certificate in app_config_dir)
# tls_profile = 'intermediate'  # TLSRef 6.0 profile: 'intermediate' (TLS 1.2 and 1.3, ECDHE AEAD suites) or 'modern' (TLS 1.3 only, for clients from 2020 on); X25519MLKEM768 is offered where OpenSSL has it
# tls_certificates = 'internal'  # where the front's certificate comes from: 'internal' (the fleet CA, a leaf of 90 days renewed by re-runs: browsers do not trust it; for private names, trials and tests) or 'acme' (Let's Encrypt or acme_server, through certbot, renewed by its timer; needs tls_names whose DNS points at this host)
# tls_names = []  # the DNS names the front serves (the first is where other Host headers are redirected); needed for acme; internal: default the inventory name and private_ip
# acme_email = None  # the ACME account's contact address (None: an account without one)
# acme_server = 'https://acme-v02.api.letsencrypt.org/directory'  # the ACME directory certbot asks: Let's Encrypt by default (its staging directory for trials)
# acme_ca_bundle = None  # a PEM file on your machine with the CA that signs acme_server's own HTTPS certificate, for a private ACME server; None: the system's CAs
# app_port = 3000  # the port the application serves HTTP on, on this host; the front proxies to it
# hsts_max_age = 63072000  # seconds browsers must use https for this site (Strict-Transport-Security); TLSRef: two years
# hsts_preload = False  # add includeSubDomains and preload to the HSTS header, for the browsers' preload list (every subdomain must then serve https)
