"""The one exception type of the PBX client."""

from __future__ import annotations

import re

_UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")
_MAX_MESSAGE = 300


class PbxError(Exception):
    """A failed PBX call: the PBX's own error code, or one of ours.

    Ours are TIMEOUT, UNREACHABLE, BAD_RESPONSE, BAD_DATE_RANGE, NO_SECRET_TOKEN
    and HTTP_<status>. `message` is a plain sentence for people; the client
    never puts a token or key in it.
    """

    def __init__(self, code: str, message: str = "", *, status: int | None = None) -> None:
        self.code = code
        # One line, bounded: messages end up in logs, toasts and /readyz.
        self.message = " ".join(message.split())[:_MAX_MESSAGE] or code
        self.status = status
        super().__init__(code, self.message, status)

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status is not None else ""
        if self.message == self.code:
            return f"{self.code}{where}"
        return f"{self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"PbxError({self.code!r}, {self.message!r}, status={self.status!r})"


def error_code(text: str) -> str:
    """The PBX's error as a code: kept when already UPPER_SNAKE, else derived.

    The PBX mixes codes ("USER_BUSY") with sentences ("date range must be in
    24 hours"); callers switch on codes, so sentences become
    DATE_RANGE_MUST_BE_IN_24_HOURS and the sentence stays the message.
    """
    text = text.strip()
    if _UPPER_SNAKE.match(text):
        return text
    return _NOT_WORD.sub("_", text).strip("_").upper()[:64] or "UNKNOWN_ERROR"
