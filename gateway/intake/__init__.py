"""Intake: reports arriving by app and by SMS, stored durably before anything else.

`reports` (filing a report, idempotent on its client id, then queueing its
route), `inbound_sms` (the Kannel webhook's store-first receive, and the job
that parses a message and acts: a report, a sighting, a status query, help;
the reply to a garbled SMS). May import every room below: the ground floor,
privacy/, records/, access/, delivery/.
"""
