"""Settings for application servers (the app_servers group); group_data/all.py has the rest."""

# app_user = "application"  # locked account the application runs as: no home, no shell, no password (guide 4.1)
