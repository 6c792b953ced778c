"""PBX local time: the PBX writes `YYYY-MM-DD HH:MM:SS` with no zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from wallboard.pbx.errors import PbxError

PBX_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_REPORT_RANGE = timedelta(hours=24)
# strptime alone would also take "2021-6-1 0:0:0", which the PBX refuses.
_STRICT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


class PbxTime:
    """Converts between epoch milliseconds (UTC) and the PBX's local strings."""

    def __init__(self, tz_name: str) -> None:
        # ZoneInfoNotFoundError (a KeyError) for an unknown name: config checks it first.
        self.zone = ZoneInfo(tz_name)

    def parse(self, text: object) -> int | None:
        """Epoch ms of a local `YYYY-MM-DD HH:MM:SS`; None for "", None or garbage."""
        if not isinstance(text, str):
            return None
        try:
            naive = datetime.strptime(text.strip(), PBX_FORMAT)
        except ValueError:
            return None
        return int(naive.replace(tzinfo=self.zone).timestamp() * 1000)

    def format(self, value: int | float | datetime) -> str:
        """The PBX's local string for epoch ms or an aware datetime."""
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("format() needs an aware datetime")
            moment = value
        else:
            moment = datetime.fromtimestamp(value / 1000, UTC)
        return moment.astimezone(self.zone).strftime(PBX_FORMAT)

    def day_start_ms(self, now_ms: int | float) -> int:
        """Epoch ms of the local midnight that starts the day of `now_ms`."""
        local = datetime.fromtimestamp(now_ms / 1000, self.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return int(midnight.timestamp() * 1000)

    def day_window(self, now_ms: int | float) -> tuple[str, str]:
        """(start, end) of "today so far" that the report endpoints accept.

        The PBX wants start < end at second precision and at most 24 h apart, so
        right after midnight the end is pushed one second past the start, and on
        a 25-hour local day (DST zones) the range is cut to 24 h.
        """
        start_ms = self.day_start_ms(now_ms)
        whole_second_now = int(now_ms) // 1000 * 1000
        end_ms = max(whole_second_now, start_ms + 1000)
        start, end = self.format(start_ms), self.format(end_ms)
        start_naive = datetime.strptime(start, PBX_FORMAT)
        if datetime.strptime(end, PBX_FORMAT) - start_naive > MAX_REPORT_RANGE:
            end = (start_naive + MAX_REPORT_RANGE).strftime(PBX_FORMAT)
        return start, end


def check_report_range(start: str, end: str) -> None:
    """Raise PbxError("BAD_DATE_RANGE") unless the PBX would accept the range.

    The PBX compares the strings as local wall-clock times; so do we.
    """
    try:
        if not (_STRICT.fullmatch(start) and _STRICT.fullmatch(end)):
            raise ValueError
        start_at = datetime.strptime(start, PBX_FORMAT)
        end_at = datetime.strptime(end, PBX_FORMAT)
    except (TypeError, ValueError):
        raise PbxError("BAD_DATE_RANGE", "Dates must be written YYYY-MM-DD HH:MM:SS in PBX local time.") from None
    if start_at >= end_at:
        raise PbxError("BAD_DATE_RANGE", "The start date must be before the end date.")
    if end_at - start_at > MAX_REPORT_RANGE:
        raise PbxError("BAD_DATE_RANGE", "The date range must be at most 24 hours.")
