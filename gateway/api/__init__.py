"""Every blueprint of the API, registered in one place: the whole surface is here."""

from __future__ import annotations

from flask_smorest import Api

from gateway.api import auth, dispatches, health, reports, sealed, sms

PREFIX = "/api/v1"


def register_blueprints(api: Api) -> None:
    api.register_blueprint(health.blp)
    api.register_blueprint(auth.blp, url_prefix=PREFIX)
    api.register_blueprint(reports.blp, url_prefix=PREFIX)
    api.register_blueprint(dispatches.blp, url_prefix=PREFIX)
    api.register_blueprint(sealed.blp, url_prefix=PREFIX)
    api.register_blueprint(sms.blp)  # Kannel's webhooks: not JSON, outside /api
    api.spec.components.security_scheme("kannelSecret", {
        "type": "apiKey", "in": "query", "name": "secret",
        "description": "the webhook secret shared with Kannel (SAFEGRID_SMS_WEBHOOK_SECRET)",
    })
