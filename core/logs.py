"""JSON log lines, each carrying the correlation id of the work in hand."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from core.correlation import current_correlation_id

# Attributes every LogRecord has; anything else passed via `extra=` is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        correlation_id = getattr(record, "correlation_id", None) or current_correlation_id.get()
        if correlation_id:
            line["correlation_id"] = correlation_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:  # inside a traced stage: the line joins its trace
            line["trace_id"] = f"{span.trace_id:032x}"
            line["span_id"] = f"{span.span_id:016x}"
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return scrub(json.dumps(line, default=str))


# What must never reach a log line: e-mail addresses (documents and queries
# carry people's text) and credentials (API keys in headers, bearer tokens,
# passwords in URLs or key=value pairs).
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[\w.~+/=-]+")
_SECRET_PAIR = re.compile(
    r"(?i)\b((?:x-)?api[-_]?key|token|password|passwd|secret)(\\?[\"']?\s*[:=]\s*\\?[\"']?)[^\s\"'&,;\\]+"
)
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^@\s/]+@")


def scrub(text: str) -> str:
    """`text` with e-mail addresses and credentials replaced by markers."""
    text = _EMAIL.sub("[email]", text)
    text = _BEARER.sub(r"\1 [redacted]", text)
    text = _SECRET_PAIR.sub(r"\1\2[redacted]", text)
    return _URL_PASSWORD.sub(r"\1[redacted]@", text)


# Libraries that log every request, heartbeat or rebalance step at INFO.
_NOISY = ("aiokafka", "neo4j", "httpx", "uvicorn.access", "sentence_transformers", "faust", "mode")


class RepeatFilter(logging.Filter):
    """One line per `window_s` for each repeated library message: a broker that
    is down makes its client log the same connection error thousands of times
    a second. The line after a quiet window says how many were held back."""

    def __init__(self, window_s: float = 10.0, prefixes: tuple[str, ...] = _NOISY) -> None:
        super().__init__()
        self.window_s = window_s
        self.prefixes = prefixes
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # → (first shown, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        shown, held = self._seen.get(key, (0.0, 0))
        if record.created - shown < self.window_s:
            self._seen[key] = (shown, held + 1)
            return False
        if held:
            record.repeated = held  # becomes a field of the JSON line
        self._seen[key] = (record.created, 0)
        if len(self._seen) > 10_000:  # messages with ids in their template: forget
            self._seen.clear()
        return True


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A dictConfig routing every logger (ours, faust's, uvicorn's) to one JSON
    stream on stderr. Faust's worker takes it as `logging_config`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"repeats": {"()": RepeatFilter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": sys.stderr,
                "filters": ["repeats"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {name: {"level": "WARNING"} for name in _NOISY},
    }


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
