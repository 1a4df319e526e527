"""Logging: readable text on a terminal, JSON lines otherwise; secrets scrubbed either way."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from connectors.redact import install_log_scrubber

if TYPE_CHECKING:
    from ingest.wiring.settings import Settings


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(fmt: str = "auto", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler.setFormatter(JsonLines() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "httpx", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_log_scrubber()  # after the handler exists: the scrubber sits on handlers


def for_command(settings: Settings, level: int = logging.WARNING) -> Settings:
    """Logging configured as the settings say, for a command: the daemon logs from INFO, the other
    commands only their warnings. Then the deprecated setting names the settings were read under
    are logged (fleetlake.settings): settings load before logging exists, so this is their first
    chance to reach the log."""
    configure(settings.log_format, level)
    settings.log_deprecations()
    return settings
