"""What every enrolment change shares: the caller's reach, field problems, audit digests.

Who may act where: an `admin` token names a county (`safegrid token --role admin
--county 530627`) and reaches only that county; an admin token without a county
is the platform operators' and reaches every county, as the CLI does.

Field problems carry the codes of ROSTER_FORMAT.md (`invalid_phone`,
`phone_taken`, `unknown_cell`, …) so the API, the CLI and the roster importer
say the same thing; they never quote a phone number or a name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.access.tokens import Principal
from gateway.errors import Refusal
from gateway.privacy import audit, phonebook
from gateway.records.people import Officer, Reporter
from grid.documents import GridCell, Station, utcnow
from sms.phones import InvalidPhone, is_mobile, normalise

NAME_MAX = 100
ACTOR_MAX = 100  # AuditEntry.actor
COUNTY_DIGITS = 6


@dataclass(frozen=True)
class Reach:
    """Who is acting and which county they may act in (None: every county)."""

    actor: str
    county: str | None

    @classmethod
    def of(cls, principal: Principal) -> Reach:
        # A label may be 100 characters, and so may the audit log's actor: room for "admin:".
        return cls(principal.actor[:ACTOR_MAX], principal.county_code)

    @classmethod
    def operator(cls, actor: str) -> Reach:
        """A platform operator (the CLI): every county."""
        return cls(actor, None)

    def covers(self, county: str | None) -> bool:
        return self.county is None or county == self.county

    def county_for(self, given: str | None) -> str:
        """The county a new record goes into: the admin's own, or the one given (operators)."""
        county = given or self.county
        if not county:
            raise Problems().add("county_code", "required", "say which county (6 digits)")\
                .refusal()
        if not self.covers(county):
            raise Refusal(403, f"your admin token reaches county {self.county} only")
        if len(county) != COUNTY_DIGITS or not county.isdigit():
            raise Problems().add("county_code", "invalid", "a county is a 6-digit adcode")\
                .refusal()
        return county

    def base_query(self, filters: Mapping[str, Any]) -> dict[str, Any]:
        """A listing's query: the county filter within reach, and active or not."""
        county = self.check_filter(filters.get("county"))
        return with_active({"county_code": county} if county else {}, filters.get("active"))

    def find(self, cls: Any, code: str, what: str) -> Any:
        """The document of `cls` with this code, when in reach; else 404."""
        found = cls.objects(code=code).first()
        if found is None or not self.covers(found.county_code):
            raise Refusal(404, f"no {what} {code} in your county")
        return found

    def check_filter(self, county: str | None) -> str | None:
        """The county a listing is limited to; another county than the admin's is 403."""
        if county and not self.covers(county):
            raise Refusal(403, f"your admin token reaches county {self.county} only")
        return county or self.county


@dataclass
class Problems:
    """Field problems found in one request, as ROSTER_FORMAT.md's {field, code, message}."""

    found: list[dict[str, str]] = field(default_factory=list)

    def add(self, name: str, code: str, message: str) -> Problems:
        self.found.append({"field": name, "code": code, "message": message})
        return self

    def refusal(self) -> Refusal:
        first = self.found[0]
        return Refusal(422, f"{first['field']}: {first['message']}", {"fields": self.found})

    def raise_any(self) -> None:
        if self.found:
            raise self.refusal()

    def text(self, name: str, value: Any, *, required: bool, max_length: int = NAME_MAX) -> None:
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.add(name, "required", "must not be empty")
        elif len(str(value)) > max_length:
            self.add(name, "too_long", f"at most {max_length} characters")
        elif str(value).startswith("sg1:"):  # would be taken for a sealed value
            self.add(name, "invalid", "must not start with sg1:")

    def choice(self, name: str, value: Any, allowed: Any, code: str, *,
               required: bool = False) -> None:
        if required and not value:
            self.add(name, "required", "must not be empty")
        elif value is not None and value not in allowed:
            self.add(name, code, "one of " + ", ".join(allowed))

    def phone(self, name: str, given: str | None, *, required: bool = True) -> str | None:
        """`given` as E.164 when it is a usable mobile number; else a problem, and None."""
        if given is None or not str(given).strip():
            if required:
                self.add(name, "required", "must not be empty")
            return None
        try:
            number = normalise(str(given))
        except InvalidPhone as exc:
            self.add(name, "invalid_phone", f"not a valid phone number ({exc.reason})")
            return None
        if not is_mobile(number):
            self.add(name, "not_mobile", "a fixed line cannot receive SMS")
            return None
        return number

    def cell(self, name: str, code: str | None, county: str) -> None:
        if code and not GridCell.objects(code=code, county_code=county).only("id").first():
            self.add(name, "unknown_cell", f"no grid cell {code} in county {county}")

    def station(self, name: str, code: str | None, county: str) -> None:
        if code and not Station.objects(code=code, county_code=county, active__ne=False)\
                .only("id").first():
            self.add(name, "unknown_station", f"no active station {code} in county {county}")


def taken(name: str, message: str) -> Refusal:
    """A unique value (a phone, a code) someone else holds: 409 with the roster's code."""
    code = "phone_taken" if name == "phone" else "code_taken"
    return Refusal(409, message, {"fields": [{"field": name, "code": code, "message": message}]})


def set_and_unset(values: Mapping[str, Any]) -> dict[str, Any]:
    """mongoengine update keywords: set the values given, unset the ones given as None."""
    update = {f"set__{k}": v for k, v in values.items() if v is not None}
    update.update({f"unset__{k}": True for k, v in values.items() if v is None})
    return update


def with_active(query: dict[str, Any], active: bool | None) -> dict[str, Any]:
    """`query` limited to active (older documents have no `active`: they are) or inactive."""
    if active is True:
        query["active__ne"] = False
    elif active is False:
        query["active"] = False
    return query


def toggle(reach: Reach, doc: Any, active: bool, subject: str,
           view: Callable[[Any], dict[str, Any]], **details: Any) -> Any:
    """Deactivate or reactivate `doc` in one guarded update; idempotent, audited on change."""
    guard = {"active__ne": False} if not active else {"active": False}
    changed = type(doc).objects(id=doc.id, **guard).modify(
        new=True, set__active=active, set__updated_at=utcnow())
    if changed is None:
        return type(doc).objects(id=doc.id).get()
    kind = subject.partition(":")[0]
    audit_change(reach, f"{kind}.{'reactivate' if active else 'deactivate'}", subject,
                 view(doc), view(changed), **details)
    return changed


def phone_holder(number: str) -> Reporter | Officer | None:
    """Whoever holds `number`: an officer, or a reporter (not a public tipster's record)."""
    officer = Officer.by_phone(number).only("id").first()
    if officer is not None:
        return officer
    reporter = Reporter.by_phone(number).only("id", "role").first()
    return reporter if reporter is not None and reporter.role != "public" else None


def digest(view: Mapping[str, Any]) -> str:
    """A keyed digest of a record's clear values, for the audit log (no value is readable).

    Keyed with the phone index key (its own domain), so a digest cannot be tested
    against guessed names or numbers by someone without the data keys.
    """
    body = json.dumps(view, sort_keys=True, ensure_ascii=False, default=str)
    return hmac.new(phonebook.index_key(), b"record:" + body.encode("utf-8"),
                    hashlib.sha256).hexdigest()


def audit_change(reach: Reach, action: str, subject: str, before: Mapping[str, Any] | None,
                 after: Mapping[str, Any] | None, **details: Any) -> None:
    """Audit a change: before/after digests and the names of the fields that changed."""
    changed = sorted(k for k in {*(before or {}), *(after or {})}
                     if (before or {}).get(k) != (after or {}).get(k))
    audit.append(reach.actor, action, subject, {
        "before": digest(before) if before is not None else None,
        "after": digest(after) if after is not None else None,
        "changed": changed, **details})
