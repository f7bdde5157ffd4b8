"""Figures for the bureau: periods in Beijing time, small-count suppression, percentiles.

Pure: no Flask, Redis or MongoDB. The rules written out are in docs/insight.md.

Periods. The bureau thinks in calendar weeks (Monday first) and months of
Beijing time (Asia/Shanghai, UTC+8 all year: China has kept no summer time
since 1991), while storage is naive UTC. A `Period` is a half-open range of
local dates, `[start, end)`, turned into UTC bounds for queries; buckets are
named by the local date they start on.

Suppression. Every published count of reports goes through `band`: 0 stays 0
(nothing to protect), 1–4 becomes "<5", and 5 or more is rounded *down* to a
multiple of five, meaning "that many to four more". Every figure (a cell, a
township, a county, a station, a unit, a week or a whole period) is banded from
its own exact count, so no figure is ever exact above zero. One difference of
two figures never pins a count (each side hides at least four values); a total
against many parts could (the total at the top of its band, every part at the
bottom of its), so a total is published through `guard`: when its band would
leave any of its published parts a single possible value, the total is
withheld instead (complementary suppression). docs/insight.md has the reasoning.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Shanghai")
# The same offset written for aggregation operators ($year, $month with `timezone`):
# both SecantusDB and MongoDB take it, and it is exact because there is no summer time.
LOCAL_OFFSET = "+08:00"
OFFSET = dt.timedelta(hours=8)
GRAINS = ("week", "month")
MAX_DAYS = 731  # two years: a year's figures against the year before
SMALL = 5  # counts below this are shown as "<5"
SUPPRESSED = "<5"
WITHHELD = "withheld"  # a total that would pin one of its parts (complementary suppression)
# A Monday, midnight in Beijing, as naive UTC: week numbers count from it.
WEEK_ANCHOR = dt.datetime(2000, 1, 2, 16, 0)
WEEK_MS = 7 * 86_400_000
# Shares are given in steps this wide, and only over this many: a share to the
# unit would let its denominator (a count) be worked out.
SHARE_STEP = 10
SHARE_MIN = 10

Count = int | str  # a published count: 0, "<5", 5, 10, …, or "withheld"


class PeriodError(ValueError):
    """A period that cannot be a figure's (empty, reversed, too long)."""


@dataclass(frozen=True)
class Period:
    """Local dates `[start, end)` in Beijing time."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        days = (self.end - self.start).days
        if days <= 0:
            raise PeriodError(f"the period from {self.start} to {self.end} has no days: "
                              "end is exclusive and must come after start")
        if days > MAX_DAYS:
            raise PeriodError(f"the period is {days} days; at most {MAX_DAYS}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def utc_start(self) -> dt.datetime:
        """The first instant, as naive UTC."""
        return dt.datetime.combine(self.start, dt.time()) - OFFSET

    @property
    def utc_end(self) -> dt.datetime:
        """The first instant after the period, as naive UTC."""
        return dt.datetime.combine(self.end, dt.time()) - OFFSET

    def previous(self) -> Period:
        """The period of the same length just before this one (for trends)."""
        return Period(self.start - dt.timedelta(days=self.days), self.start)

    def buckets(self, grain: str) -> list[dt.date]:
        """The local start dates of the weeks or months this period touches, in order."""
        first = bucket_of_date(self.start, grain)
        out = []
        day = first
        while day < self.end:
            out.append(day)
            day = next_bucket(day, grain)
        return out


def local_date(moment: dt.datetime) -> dt.date:
    """The Beijing date of a naive UTC instant."""
    return (moment + OFFSET).date()


def bucket_of_date(day: dt.date, grain: str) -> dt.date:
    """The Monday of `day`'s week, or the first of its month."""
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    raise ValueError(f"grain is one of {GRAINS}, not {grain!r}")


def next_bucket(day: dt.date, grain: str) -> dt.date:
    """The start of the week or month after the one starting on `day`."""
    if grain == "week":
        return day + dt.timedelta(days=7)
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def bucket_of(moment: dt.datetime, grain: str) -> dt.date:
    """The local start date of the week or month a naive UTC instant falls in."""
    return bucket_of_date(local_date(moment), grain)


def week_from_number(number: float) -> dt.date:
    """The Monday of week `number` counted from WEEK_ANCHOR (what the pipeline computes)."""
    return local_date(WEEK_ANCHOR + dt.timedelta(weeks=int(number)))


def band(count: int) -> Count:
    """A count as published: 0, "<5", or rounded down to a multiple of five."""
    if count < 0:
        raise ValueError("a count is never negative")
    if count == 0:
        return 0
    if count < SMALL:
        return SUPPRESSED
    return count - count % SMALL


def bounds(published: Count) -> tuple[int, int]:
    """The exact counts a published figure may stand for, lowest and highest."""
    if published == SUPPRESSED:
        return 1, SMALL - 1
    if published == WITHHELD:
        return 0, UNBOUNDED
    if not isinstance(published, int) or published < 0:
        raise ValueError(f"not a published count: {published!r}")
    if published == 0:
        return 0, 0
    return published, published + SMALL - 1


UNBOUNDED = 10**12  # what a withheld figure may be, as far as anyone can tell


def guard(total: int, *part_sets: Sequence[Count]) -> Count:
    """A total's published figure: its band, unless that band together with the parts
    published beside it (each set summing to the total) leaves one of those parts a
    single possible value; then WITHHELD."""
    published = band(total)
    for parts in part_sets:
        if _pins(published, parts):
            return WITHHELD
    return published


def _pins(total: Count, parts: Sequence[Count]) -> bool:
    t_low, t_high = bounds(total)
    limits = [bounds(p) for p in parts]
    sum_low = sum(lo for lo, _ in limits)
    sum_high = sum(hi for _, hi in limits)
    for (low, high), part in zip(limits, parts, strict=True):
        if part == 0 or part == WITHHELD:
            continue
        can_low = max(low, t_low - (sum_high - high))
        can_high = min(high, t_high - (sum_low - low))
        if can_high <= can_low:
            return True
    return False


def possible_values(part: Count, total: Count, others: Iterable[Count]) -> range:
    """What one part can be, knowing only the published total and the other parts.

    The differencing check of docs/insight.md: for a suppressed part this is
    never a single value.
    """
    low, high = bounds(part)
    t_low, t_high = bounds(total)
    o_low = o_high = 0
    for other in others:
        lo, hi = bounds(other)
        o_low, o_high = o_low + lo, o_high + hi
    return range(max(low, t_low - o_high), min(high, t_high - o_low) + 1)


def share(part: int, whole: int) -> int | None:
    """`part / whole` in whole percent, in steps of SHARE_STEP; None when `whole` is too
    small to say (under SHARE_MIN)."""
    if whole < SHARE_MIN:
        return None
    return int(SHARE_STEP * math.floor(100 * part / whole / SHARE_STEP + 0.5))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100) of `values` by linear interpolation; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def change(current: int, previous: int) -> int | None:
    """Per cent change from the previous period, in steps of SHARE_STEP; None unless both
    periods had at least SHARE_MIN reports (a change would otherwise hint at a small
    count)."""
    if previous < SHARE_MIN or current < SHARE_MIN:
        return None
    return int(SHARE_STEP * math.floor(100 * (current - previous) / previous / SHARE_STEP
                                       + 0.5))


# Acknowledgement times are kept as counts in these bins (upper bounds, seconds), so a
# station's percentiles come from a few counters instead of every clue: a percentile is
# the upper bound of the bin it falls in. Dense where SLAs are (5 min, 30 min, 24 h).
ACK_BINS = (30, 60, 120, 180, 240, 300, 450, 600, 900, 1200, 1500, 1800, 2700, 3600,
            5400, 7200, 10800, 14400, 21600, 43200, 86400, 172800, 604800)
OVER_LAST_BIN = len(ACK_BINS)  # the bin of anything slower than a week


def ack_bin(seconds: float) -> int:
    """The index of the bin an acknowledgement time falls in."""
    for i, bound in enumerate(ACK_BINS):
        if seconds <= bound:
            return i
    return OVER_LAST_BIN


def bin_percentile(counts: Sequence[int], q: float) -> int | None:
    """The q-th percentile (nearest rank) of binned times: the upper bound of its bin (for
    the last bin, one past the last bound); None without any time."""
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(total * q / 100))
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return ACK_BINS[i] if i < len(ACK_BINS) else ACK_BINS[-1] + 1
    return ACK_BINS[-1] + 1
