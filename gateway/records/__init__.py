"""Records: SafeGrid's own MongoDB documents — people, reports and API tokens, as stored.

`people` (reporters and officers, found by phone), `reports` (a report and its
location; the encryption contexts of report and dispatch text), `tokens` (API
tokens, stored as hashes), `imports` (roster imports: progress, answers, the
files they keep a while, sealed). Behaviour lives in the rooms above; these modules
say what is stored and which fields are sealed. May import the ground floor and
privacy/.
"""
