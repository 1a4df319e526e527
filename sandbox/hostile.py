"""Hostile answers a TSP server can give, for testing that one fleet's bad server stays its own
problem (issue 15). Switched per fleet by `Quirks` fields, on Samsara's GPS history:

- `endless_pages`: `{"data": [], "pagination": {"hasNextPage": true}}` forever, each with a fresh
  cursor (so a repeated-cursor check never fires);
- `trickle`: the real page, one byte every TRICKLE_GAP_S: every read returns data in time, so a
  per-read timeout never fires;
- `gzip_bomb`: `Content-Encoding: gzip`, about 1 MB on the wire that inflates to BOMB_BYTES;
- `huge_page`: a well-formed JSON page of HUGE_PAGE_BYTES, streamed (the sandbox holds 1 MB of it).

All are real HTTP (chunked bodies, real gzip), not shortcuts inside the client.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import threading
import zlib
from typing import AsyncIterator

from starlette.responses import Response, StreamingResponse

from sandbox.http import encode_cursor, json_bytes

TRICKLE_GAP_S = 0.5
BOMB_BYTES = 1 << 30
HUGE_PAGE_BYTES = 200 << 20
_MB = 1 << 20

_bomb: bytes | None = None
_bomb_lock = threading.Lock()
_fresh = itertools.count()


def endless_page(query_hash: str) -> Response:
    cursor = encode_cursor(0, next(_fresh), query_hash)
    return Response(json_bytes({"data": [], "pagination": {"endCursor": cursor, "hasNextPage": True}}),
                    media_type="application/json")


def trickle(body: bytes) -> Response:
    async def drip() -> AsyncIterator[bytes]:
        for i in range(len(body)):
            yield body[i:i + 1]
            await asyncio.sleep(TRICKLE_GAP_S)
    return StreamingResponse(drip(), media_type="application/json")


def gzip_bomb() -> Response:
    return Response(_bomb_bytes(), media_type="application/json", headers={"Content-Encoding": "gzip"})


def _bomb_bytes() -> bytes:
    """BOMB_BYTES of JSON whitespace inside a valid page, gzipped (about 1 MB), built once.

    Compressing 1 GB takes half a minute; a full flush resets the compressor, so one compressed
    megabyte of spaces is repeated instead, inside a hand-made gzip member (header, CRC, size).
    """
    global _bomb
    with _bomb_lock:
        if _bomb is None:
            head, tail, block = b'{"data": [', b'], "pagination": {"endCursor": "", "hasNextPage": false}}', b" " * _MB
            z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            first = z.compress(head) + z.flush(zlib.Z_FULL_FLUSH)
            one = z.compress(block) + z.flush(zlib.Z_FULL_FLUSH)
            last = z.compress(tail) + z.flush()
            n = BOMB_BYTES // _MB
            crc = zlib.crc32(head)
            for _ in range(n):
                crc = zlib.crc32(block, crc)
            crc = zlib.crc32(tail, crc)
            size = (len(head) + n * _MB + len(tail)) & 0xFFFFFFFF
            header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
            _bomb = header + first + one * n + last + struct.pack("<II", crc, size)
        return _bomb


def huge_page() -> Response:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"data": [{"id": "padding", "gps": [], "name": "'
        block = b"x" * _MB
        for _ in range(HUGE_PAGE_BYTES // _MB):
            yield block
        yield b'"}], "pagination": {"endCursor": "", "hasNextPage": false}}'
    return StreamingResponse(body(), media_type="application/json")
