"""Open311 GeoReport v2 on the web: a plain Flask blueprint (`views`) and its formats.

Beside api/ on the top floor, and like it imported by the app factory alone; it may
import floors 0–8. It is a separate standard API (form-encoded requests, XML and JSON
answers, errors as the spec's list of `{code, description}`), so it is kept out of
flask-smorest's OpenAPI document (docs/interop.md).
"""
