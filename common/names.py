"""Validation of names that become object keys, paths or SQL values.

A fleet id like "../other-fleet" must never reach a path: everything that becomes a key passes
through here first, and only a conservative alphabet gets through.
"""

from __future__ import annotations

import re

from common.base_errors import InvalidName

_FLEET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_FLOW = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def fleet_id(value: object) -> str:
    if not isinstance(value, str) or not _FLEET.fullmatch(value):
        raise InvalidName(f"invalid fleet id {str(value)[:80]!r}: use 1-63 letters, digits, '-' or '_', "
                          "starting with a letter or digit")
    return value


def dataset(value: object) -> str:
    if not isinstance(value, str) or not _DATASET.fullmatch(value):
        raise InvalidName(f"invalid dataset name {str(value)[:80]!r}")
    return value


def flow_name(value: object) -> str:
    if not isinstance(value, str) or not _FLOW.fullmatch(value):
        raise InvalidName(f"invalid flow name {str(value)[:80]!r}")
    return value


def month(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidName(f"invalid month {str(value)[:80]!r}: expected YYYY-MM")
    m = _MONTH.fullmatch(value)
    if not m or not 1970 <= int(m.group(1)) <= 2200:
        raise InvalidName(f"invalid month {value[:80]!r}: expected YYYY-MM")
    return value


def object_key(value: str) -> str:
    """A relative, normalised store key: no empty, '.' or '..' segments, no leading slash."""
    parts = value.split("/")
    if not value or value.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in value \
            or any(ord(c) < 32 for c in value):
        raise InvalidName(f"invalid object key {value[:120]!r}")
    return value
