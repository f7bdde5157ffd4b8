"""The bureau's figures on the web: a flask-smorest blueprint (`views`) and its `schemas`.

Beside api/ and alert_api/ on the web floor, imported by the app factory alone;
it may import floors 0–9 (the figures themselves live in gateway/insight/). Its
operations are part of the OpenAPI document, under /api/v1/insight.
"""
