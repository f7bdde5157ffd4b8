"""Access: who is calling and what their role lets them do.

`tokens` (bearer tokens, the principal a token stands for, `require(roles…)`,
the per-person rate-limit key), `login` (password and TOTP login, lockout,
refresh-once, logout), `passwords` (scrypt hashes, strength), `mfa` (TOTP
second factor), `sms_pin` (a reporter's SMS PIN, with its guess limit). May
import the ground floor, privacy/ and records/.
"""
