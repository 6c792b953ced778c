"""`wallboard backfill --days N`: past days' intervals read from `/v1/cdr`.

The PBX's date rules: a range is written `YYYY-MM-DD HH:MM:SS` in PBX local time, its start
before its end, at most 24 hours (pbx/times.py check_report_range). A day is read an hour at
a time, oldest first; each hour's intervals and the cursor past it are written in one
transaction (history_backfill), so a backfill stopped anywhere (Ctrl-C, the PBX down)
resumes at the first hour not written, and a day read once is not read again. Calls count
in the hour they started in, so an hour's four intervals are complete once it is read.
Today is the running board's (recorder.py), never read here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from wallboard.history.buckets import Intervals, call_of_cdr
from wallboard.history.store import HistoryStore
from wallboard.pbx.client import PbxClient
from wallboard.pbx.times import PBX_FORMAT, PbxTime, check_report_range


@dataclass
class Backfilled:
    days_read: list[str] = field(default_factory=list)
    days_skipped: list[str] = field(default_factory=list)  # read by an earlier run
    records: int = 0
    hours_read: int = 0


def hour_window(day: date, hour: int) -> tuple[str, str]:
    start = datetime(day.year, day.month, day.day, hour)
    start_text, end_text = start.strftime(PBX_FORMAT), (start + timedelta(hours=1)).strftime(PBX_FORMAT)
    check_report_range(start_text, end_text)
    return start_text, end_text


async def backfill(pbx: PbxClient, store: HistoryStore, *, tenant: str, clock: PbxTime, sla_seconds: int,
                   teams: Mapping[str, frozenset[str]], days: int, today: date,
                   progress: Callable[[str, int, int], None] | None = None) -> Backfilled:
    """Read the `days` days before `today` that are not read yet; PbxError and
    StorageUnavailable stop it where it is (the next run resumes there)."""
    done = Backfilled()
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        key = day.isoformat()
        next_hour, records = await store.backfill_state(tenant, key)
        if next_hour >= 24:
            done.days_skipped.append(key)
            continue
        for hour in range(next_hour, 24):
            start, end = hour_window(day, hour)
            first, last = clock.parse(start), clock.parse(end)
            assert first is not None and last is not None
            intervals = Intervals(clock, sla_seconds, teams)
            async for record in pbx.iter_cdrs(start_date=start, end_date=end):
                call = call_of_cdr(intervals.times, record)
                if call is not None and first <= call.started < last:  # `end_date` may be inclusive
                    records += intervals.add(record.id, call)
            done.hours_read += 1
            await store.write_hour(tenant, key, hour + 1, records, intervals.take_dirty())
        done.records += records
        done.days_read.append(key)
        if progress is not None:
            progress(key, records, 24 - next_hour)
    return done
