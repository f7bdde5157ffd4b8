"""Every blueprint of the API, registered in one place: the whole surface is here."""

from __future__ import annotations

from flask_smorest import Api

from gateway.api import (
    audit_log,
    auth,
    dispatches,
    health,
    legal_hold,
    reports,
    roster,
    schemas,
    sealed,
    sms,
    stations,
)

PREFIX = "/api/v1"


def register_blueprints(api: Api) -> None:
    # Before any schema is documented: nullable nested objects documented as "or null".
    api.ma_plugin.converter.add_attribute_function(schemas.null_not_any_object)
    api.register_blueprint(health.blp)
    api.register_blueprint(auth.blp, url_prefix=PREFIX)
    api.register_blueprint(reports.blp, url_prefix=PREFIX)
    api.register_blueprint(dispatches.blp, url_prefix=PREFIX)
    api.register_blueprint(sealed.blp, url_prefix=PREFIX)
    api.register_blueprint(legal_hold.blp, url_prefix=PREFIX)
    api.register_blueprint(audit_log.blp, url_prefix=PREFIX)
    # The admin API: units, reporters and officers; stations.
    api.register_blueprint(roster.blp, url_prefix=PREFIX)
    api.register_blueprint(stations.blp, url_prefix=PREFIX)
    api.register_blueprint(sms.blp)  # Kannel's webhooks: not JSON, outside /api
    api.spec.components.security_scheme("kannelSecret", {
        "type": "apiKey", "in": "query", "name": "secret",
        "description": "the webhook secret shared with Kannel (SAFEGRID_SMS_WEBHOOK_SECRET)",
    })
