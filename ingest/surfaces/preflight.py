"""What `fleetlake run` checks before it starts anything: each problem one error naming its setting.

A daemon that starts on a misspelt setting, a key that cannot open its tokens or a port someone
else holds would log "running" and do the wrong thing for hours; so these refuse the start.
"""

from __future__ import annotations

import difflib
import errno
import socket

from common.errors import ConfigError
from ingest.wiring.settings import Settings, unknown_names


def check(settings: Settings) -> None:
    """Raise ConfigError for the first problem found: setting names, token key, HTTP port."""
    for name in unknown_names():
        close = difflib.get_close_matches(name, _setting_names(), n=1)
        raise ConfigError(name, "is not a fleetlake setting" + (f": did you mean {close[0]}?" if close else
                                                                 " (README.md lists them all)"))
    if settings.token_key is not None:
        from cryptography.fernet import Fernet

        try:
            Fernet(settings.token_key.get_secret_value().encode())
        except (ValueError, TypeError):
            raise ConfigError("FLEETLAKE_TOKEN_KEY", "is not a Fernet key (32 url-safe base64 bytes): generate one "
                                                     "with `fleetlake keygen`") from None
    _port_free(settings.http_host, settings.http_port)


def _setting_names() -> list[str]:
    return [f"FLEETLAKE_{n.upper()}" for n in Settings.model_fields]


def _port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a TIME_WAIT is no owner
        try:
            s.bind((host, port))
        except OSError as e:
            why = "in use by another process" if e.errno == errno.EADDRINUSE else (e.strerror or "not bindable")
            raise ConfigError("FLEETLAKE_HTTP_PORT", f"{host}:{port} is {why}: stop what holds it or set another "
                                                     "FLEETLAKE_HTTP_PORT (or FLEETLAKE_HTTP_HOST)") from None
