"""Settings for database servers (the db_servers group); group_data/all.py has the rest.

The database server gets the baseline from all.py. Its own keys (bind address, the
application's database and account) arrive with the database deploy.
"""
