"""Keep secrets out of logs and errors: redact URLs and headers, scrub known secret values.

Every token fleetlake obtains is registered here; the log filter replaces any occurrence in a
log record, so even a message built carelessly elsewhere cannot leak one.

The set is bounded: tokens rotate for as long as the daemon runs, so it keeps the newest
`MAX_SECRETS` (a refreshed-away token is dead, and thousands of fleets' live tokens still fit),
and the longest-first order the scrubber needs is computed when the set changes, not per record.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "REDACTED"
_SENSITIVE_PARAMS = {"code", "state", "access_token", "refresh_token", "client_secret", "token", "api_key",
                     "key", "password"}
_SENSITIVE_HEADERS = {"authorization", "x-api-key", "cookie", "set-cookie", "proxy-authorization"}
_MIN_SECRET_LEN = 8
MAX_SECRETS = 5_000

_secrets: OrderedDict[str, None] = OrderedDict()  # insertion order = age, for eviction
_longest_first: tuple[str, ...] = ()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    global _longest_first
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        if value in _secrets:
            _secrets.move_to_end(value)
            return
        _secrets[value] = None
        while len(_secrets) > MAX_SECRETS:
            _secrets.popitem(last=False)
        _longest_first = tuple(sorted(_secrets, key=len, reverse=True))


def scrub(text: str) -> str:
    for s in _longest_first:  # a tuple swapped whole under the lock: safe to read without it
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def redact_url(url: str) -> str:
    """The URL with credentials, codes, tokens and cursors removed from its userinfo and query."""
    parts = urlsplit(str(url))
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = urlencode([(k, REDACTED if k.lower() in _SENSITIVE_PARAMS else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: (REDACTED if k.lower() in _SENSITIVE_HEADERS else scrub(v)) for k, v in headers.items()}


class ScrubSecrets(logging.Filter):
    """A logging filter that replaces registered secrets in every record's message and args."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def install_log_scrubber(logger: logging.Logger | None = None) -> None:
    """Attach the scrubber to the root logger's handlers (idempotent)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, ScrubSecrets) for f in handler.filters):
            handler.addFilter(ScrubSecrets())
