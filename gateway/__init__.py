"""SafeGrid's application: the rooms that join geo/, grid/ and sms/ into the flow.

Rooms import downwards only, in this order (tests/test_layers.py holds it):

- the ground floor: `settings`, `errors`, `extensions` (unbound Api, limiter,
  Redis holder), `runtime` (this process's settings, rules, escalation policy),
  `gridcache` (this process's grid snapshot);
- `privacy/`: sealing personal data, the phone book, the audit log and its anchors,
  the refusal of genetic data;
- `records/`: people, reports and API tokens as stored;
- `access/`: who may call: tokens and principals, login, passwords, TOTP, SMS PIN;
- `delivery/`: route job, queues, cases, the dispatch workflow, the SLA clock and
  escalation, what an officer may see, outbound SMS;
- `intake/`: reports from the app and SMS, and the replies to them;
- `custody/`: personal data over time: break-glass unsealing, legal hold, retention,
  the catalog of sealed values;
- the top floor: `sample`, `startup`, `worker`, `security`, `bodies`, `api/`, `cli/`, `app`.

docs/architecture.md has the map with what lives where.
"""
