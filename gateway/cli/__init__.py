"""The `safegrid` command line (click): `main.py` holds the group, one module per command group.

Each command configures the process (`common.configure`: settings from the
environment, stores, indexes) and calls a function of a room below; what it
changes about people or data is audited with `common.who_ran()` as the actor.
"""
