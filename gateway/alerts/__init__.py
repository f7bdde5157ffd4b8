"""Missing-child rapid alerts (寻人, issue 13): the Alert as stored, issuing and ending it.

A room above delivery/: it may import floors 0–4 (settings … delivery). The rings'
geometry is pure and lives in grid/alerts.py; the texts in sms/replies.py.
"""
