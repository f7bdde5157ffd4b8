"""Custody: personal data over time — who may break the seal, what is kept, for how long.

`unsealing` (a clue's reports for officers, and break-glass reads of a
reporter's identity, audited first, the supervisor told), `legal_hold` (a
supervisor keeps a report from anonymisation), `retention` (anonymising
unfounded reports after the retention period), `sealed_data` (the catalog of
every sealed value that key rotation walks, and upgrading older databases).
May import every room below it, intake/ included.
"""
