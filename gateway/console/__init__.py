"""The police console (/console/): pages for station officers (派出所民警) and county
supervisors, served by SafeGrid itself (docs/console.md).

A room on the web floor, beside api/, open311/ and alert_api/: it calls the
delivery, alerts, custody and access functions directly, as the JSON API does,
and imports nothing above it. Its Jinja templates and its own script and
stylesheet live in templates/ and static/; Leaflet comes from XStatic-Leaflet.
"""
