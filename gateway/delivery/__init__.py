"""Delivery: from a stored report to the station that must act, and the clock on it.

`routing` (the route job: locate, cell, station, priority, dispatches; the
sweeper), `locating` (the choice of a report's location: GPS, grid code,
gazetteer, geocoder, the reporter's home cell), `cases` (linking reports into
one case), `queues` (RQ queue names), `workflow` (acknowledge, transfer, note,
close; delivery to the inbox), `escalation` (the SLA deadline check and the
escalation chain), `visibility` (who may see which dispatch), `inbox` (a
station's inbox and transfers, a county's overdue list), `outbound_sms`
(every SMS SafeGrid sends, recorded first). May import the ground floor,
privacy/, records/ and access/.
"""
