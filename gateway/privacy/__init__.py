"""Privacy: personal data sealed at rest, phone numbers found blind, every act on record.

`crypto` seals values with AES-256-GCM under rotating keys; `phonebook` seals
phone numbers and finds them by a keyed blind index; `audit` is the hash-chained
audit log and `audit_anchor` writes its head outside the database; `genetic`
refuses DNA and biometric data. May import the ground floor of gateway/ only
(settings, runtime, extensions), and geo/, grid/, sms/.
"""
