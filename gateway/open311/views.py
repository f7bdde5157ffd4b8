"""GeoReport v2 endpoints under /open311/v2/, each in `.json` and `.xml`.

Thin, as api/ blueprints are: read the arguments, call one function of
gateway/intake/open311.py, answer in the format the path names. Every refusal,
and every HTTP error on these paths (a body over the size limit: 413 before
parsing, gateway/bodies.py), is written as the spec's error list.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException

from gateway.errors import Refusal
from gateway.intake import open311
from gateway.open311.formats import errors, respond

PREFIX = "/open311/v2"
blp = Blueprint("open311", __name__, url_prefix=PREFIX)
FMT = "<any(json, xml):fmt>"
FORM = "application/x-www-form-urlencoded"
# Discovery's changeset: when this document or the services last changed in a way
# clients should notice (bump it with the services).
CHANGESET = "2026-12-05T00:00:00Z"
PRIVATE = {"Cache-Control": "no-store"}


def _fmt() -> str:
    return str((request.view_args or {}).get("fmt", "json"))


@blp.errorhandler(Refusal)
def refused(exc: Refusal) -> Response:
    headers = dict(PRIVATE)
    if exc.status == 429 and isinstance(exc.errors, dict):
        headers["Retry-After"] = str(exc.errors.get("retry_after", 3600))
    return errors(_fmt(), exc.status, exc.message, headers)


@blp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    data = getattr(exc, "data", None)
    message = data.get("message") if isinstance(data, dict) else None
    return errors(_fmt(), exc.code or 400, str(message or exc.description or exc.name))


@blp.get(f"/discovery.{FMT}")
def discovery(fmt: str) -> Response:
    counties = ", ".join(open311.served_counties()) or "none yet"
    return respond(fmt, "discovery", {
        "changeset": CHANGESET,
        "contact": f"SafeGrid: suspected child abduction and human trafficking, routed to the "
                   f"responsible police station. Emergencies: call 110. jurisdiction_id "
                   f"(county adcodes served): {counties}.",
        "key_service": "API keys are issued by this deployment's administrators "
                       "(safegrid open311 key issue); ask them for one.",
        "endpoints": [{
            "specification": open311.SPECIFICATION,
            "url": request.host_url.rstrip("/") + PREFIX,
            "changeset": CHANGESET,
            "type": "production",
            "formats": ["text/xml", "application/json"],
        }],
    })


@blp.get(f"/services.{FMT}")
def services(fmt: str) -> Response:
    open311.jurisdiction(request.args.get("jurisdiction_id"))
    return respond(fmt, "services", [s.as_dict() for s in open311.services()])


@blp.get(f"/services/<code>.{FMT}")
def service_definition(code: str, fmt: str) -> Response:
    open311.jurisdiction(request.args.get("jurisdiction_id"))
    found = open311.service(code)
    # No service has metadata: the definition has no attributes.
    return respond(fmt, "service_definition",
                   {"service_code": found.service_code, "attributes": []})


@blp.post(f"/requests.{FMT}")
def create_request(fmt: str) -> Response:
    if request.mimetype != FORM:
        raise Refusal(400, f"send the request as {FORM}, as the GeoReport v2 spec does")
    form = request.form.to_dict()
    key = open311.key_for(form.pop("api_key", None))
    doc = open311.file_request(key, form)
    return respond(fmt, "service_requests", [{
        "service_request_id": doc["code"],
        "service_notice": open311.SERVICE_NOTICE,
        "account_id": None,
    }], headers=PRIVATE)


@blp.get(f"/requests.{FMT}")
def list_requests(fmt: str) -> Response:
    key = open311.key_for(request.args.get("api_key"))
    found = open311.requests_of(key, request.args.to_dict())
    return respond(fmt, "service_requests", found, headers=PRIVATE)


@blp.get(f"/requests/<code>.{FMT}")
def get_request(code: str, fmt: str) -> Response:
    key = open311.key_for(request.args.get("api_key"))
    found = open311.request_of(key, code, request.args.get("jurisdiction_id"))
    return respond(fmt, "service_requests", [found], headers=PRIVATE)


@blp.route("/<path:rest>", methods=["GET", "POST"])
def unknown(rest: str) -> Response:
    # Any other path here (a resource the spec does not define, `.html`): still its error list.
    return errors("xml" if rest.endswith(".xml") else "json", 404,
                  "no such Open311 resource (see discovery.json)")
