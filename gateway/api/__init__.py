"""The REST API: flask-smorest blueprints, one module per resource, and nothing else.

A view parses its input with a marshmallow schema, calls one function of a room
below (access, delivery, intake, custody, privacy) and answers; the rules and
the queries belong to those rooms. `routes.register_blueprints` registers every
blueprint in one place, so the whole surface is visible there. Only the app
factory (gateway/app.py) imports this package.
"""
