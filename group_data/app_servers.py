"""Settings for application servers (the app_servers group); group_data/all.py has the rest.
"""


# Firewall
# app_tcp_ports = [80, 443, 3000, 3003]  # TCP ports the application serves to everyone, besides SSH (guide 3.11)
# app_port_redirects = {80: 3000, 443: 3003}  # public ports sent on to the unprivileged application (guide 3.11)

# Application
# app_user = 'application'  # locked account the application runs as: no home, no shell, no password (guide 4.1); never an admin's, root's or a system account's name
