"""One line per event, plain by default or JSON, with every configured secret
blanked out of the text as a last line of defence."""

from __future__ import annotations

import logging
import sys
import time

import orjson

_SECRETS: list[str] = []


def _scrub(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg, record.args = _scrub(record.getMessage()), None
        return True


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"t": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)),
                 "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return _scrub(orjson.dumps(entry).decode())


class _Plain(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        # One line per event: the exception's last line joins the message, and a
        # message that itself holds line breaks (a PBX string) is folded.
        text = super().format(record)
        return _scrub(" | ".join(line for line in text.splitlines() if line.strip()))

    def formatException(self, ei: object) -> str:
        return super().formatException(ei).splitlines()[-1]  # type: ignore[arg-type]


def setup_logging(fmt: str = "plain", secrets: list[str] | None = None, level: int = logging.INFO) -> None:
    _SECRETS[:] = sorted({s for s in (secrets or []) if len(s) >= 4}, key=len, reverse=True)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Json() if fmt == "json" else _Plain())
    handler.addFilter(_Redact())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn.access", "apscheduler.executors.default", "apscheduler.scheduler", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def loggable(text: str) -> str:
    """A form value (a username) as one short printable line for the log."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:64]
