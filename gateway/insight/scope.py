"""Whose figures a caller may see, and over which period.

A supervisor sees their own county; an administrator whose token names a county
sees that county; a platform operator's admin token (no county) sees any county
or the whole data set. Periods are Beijing-time dates, `[start, end)`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.access.tokens import Principal
from gateway.errors import Refusal
from grid.documents import Station
from grid.figures import LOCAL, Period, PeriodError

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Scope:
    """The county a figure covers (None: every county) and its period."""

    county: str | None
    period: Period


def county_for(principal: Principal, asked: str | None) -> str | None:
    """The county the caller's figures cover; 403 for a county not theirs, 404 for none."""
    own = principal.county_code
    if principal.role == "supervisor" or (principal.role == "admin" and own):
        if asked and asked != own:
            raise Refusal(403, f"your token covers county {own} only, not {asked}")
        return own
    if principal.role != "admin":
        raise Refusal(403, "figures are for supervisors and administrators")
    if asked and Station.objects(county_code=asked).first() is None:
        raise Refusal(404, f"no county {asked}: it has no stations")
    return asked


def period_of(start: dt.date | None, end: dt.date | None, today: dt.date | None = None) -> Period:
    """The period asked for; by default the last DEFAULT_DAYS days up to today (Beijing)."""
    today = today or dt.datetime.now(LOCAL).date()
    try:
        end = end or (today + dt.timedelta(days=1))
        start = start or (end - dt.timedelta(days=DEFAULT_DAYS))
        return Period(start, end)
    except PeriodError as exc:
        raise Refusal(422, str(exc), {"query": {"end": [str(exc)]}}) from exc
    except OverflowError as exc:  # a date at the calendar's edge, e.g. end=0001-01-01
        message = "the period runs past the dates SafeGrid can count"
        raise Refusal(422, message, {"query": {"end": [message]}}) from exc


def scope_of(principal: Principal, county: str | None, start: dt.date | None,
             end: dt.date | None) -> Scope:
    """Both checks at once, the county first (a wrong county is 403 whatever the period)."""
    where = county_for(principal, county)
    return Scope(where, period_of(start, end))


def stations_of(county: str | None) -> list[str] | None:
    """The codes of the county's stations and desk (inactive ones too: they held clues)."""
    if county is None:
        return None
    return [s.code for s in Station.objects(county_code=county).only("code")]
