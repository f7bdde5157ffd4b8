"""Missing-child alerts on the web: a flask-smorest blueprint (`views`) and its schemas.

Beside api/ on the top floor (api/ holds its cap of 12 modules), and like it imported
by the app factory alone; it may import floors 0–8. Its operations are part of the
OpenAPI document: the app factory registers the blueprint on the same Api.
"""
