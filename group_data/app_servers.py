"""Settings for application servers (the app_servers group); group_data/all.py has the rest.
"""


# Firewall
# app_tcp_ports = [80, 443, 3000, 3003]  # TCP ports the application serves to everyone, besides SSH (guide 3.11)
# app_port_redirects = {80: 3000, 443: 3003}  # public ports sent on to the unprivileged application (guide 3.11)

# Application
# app_user = 'application'  # locked account the application runs as: no home, no shell, no password (guide 4.1); never an admin's, root's or a system account's name
# app_config_dir = '/usr/local/application/config'  # where the production config and the database client's key and certificate live: app_user's alone (700, files 400; guide 4.5); written when the inventory has a db server
# app_command = None  # the command that starts the application, an absolute path first (like '/usr/bin/node /srv/app/server.js', outside /home); set, it runs as app_user in the sandboxed systemd service application.service (writable: /var/lib/application and /run/application only), with the .env config as its environment; None: no service
# app_config_format = 'env'  # the production config's format: 'env' (production.env, KEY=value lines) or 'json' (production.json, a "database" object)
