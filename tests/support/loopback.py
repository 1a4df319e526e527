"""Calls to the servers a test starts, without a TLS context built for every call.

httpx.get() makes a Client per call, and each Client loads the CA roots (26 ms of CPU on this
machine) even for a plain http:// URL; a test polling a daemon every 0.3 s spent about a tenth
of a core on that. These pass the project's one context instead (connectors.http.tls_context).
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.http import tls_context


def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, verify=tls_context(), **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, verify=tls_context(), **kwargs)


def client(**kwargs: Any) -> httpx.Client:
    return httpx.Client(verify=tls_context(), **kwargs)
