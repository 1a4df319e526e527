"""An additive content digest of a window: the digest of a union of disjoint parts is the sum of theirs.

A month that lands in partial commits (partitions.writer) gains a part per commit. Its fingerprint
must still be a function of its rows alone (the same rows committed once, in sixteen parts, or
compacted afterwards give the same fingerprint, so compaction reruns no feature), and computing it
must not cost a pass over the whole month at every partial commit. So each row is hashed on its
own (two independent 64-bit lanes, mixed column by column with the splitmix64 finaliser) and a
part's digest is the row count and the lane sums modulo 2**64: adding a part adds its digest.

- Values are hashed by their logical content (dictionary ids decoded, timestamps as integers,
  floats by their bits), never by Parquet bytes, which vary with library versions.
- Nulls hash apart from every value (a null flag per column), so a null odometer is not 0.
- Row order does not matter: sorting or re-cutting the rows into files keeps the digest.
- It detects change, it is no cryptographic commitment: an accidental collision needs two row
  multisets whose 128-bit lane sums agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_TAG = "r2"  # bump if the row encoding below changes: every fingerprint changes with it
_MASK = (1 << 64) - 1
_SEEDS = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03))
_NULL = np.uint64(0xA0761D6478BD642F)


@dataclass(frozen=True)
class Digest:
    rows: int
    a: int
    b: int

    def __add__(self, other: Digest) -> Digest:
        return Digest(self.rows + other.rows, (self.a + other.a) & _MASK, (self.b + other.b) & _MASK)

    @property
    def fingerprint(self) -> str:
        """The window's fingerprint: a string the digest can be read back from (`parse`)."""
        return f"{_TAG}{self.a:016x}{self.b:016x}{self.rows:012x}"

    @property
    def name(self) -> str:
        """A content name for a file holding exactly these rows (the lanes lead: rows would collide)."""
        return hashlib.blake2b(self.fingerprint.encode(), digest_size=12).hexdigest()

    @classmethod
    def parse(cls, fingerprint: str) -> Digest | None:
        """The digest a fingerprint encodes, or None for a fingerprint of the earlier, non-additive kind."""
        if len(fingerprint) != 46 or not fingerprint.startswith(_TAG):
            return None
        try:
            return cls(int(fingerprint[34:], 16), int(fingerprint[2:18], 16), int(fingerprint[18:34], 16))
        except ValueError:
            return None


EMPTY = Digest(0, 0, 0)


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _values(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """(uint64 per row, null mask or None) of one column's logical values."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    nulls = np.asarray(arr.is_null(), dtype=bool) if arr.null_count else None
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        arr = pc.dictionary_encode(arr)
        t = arr.type
    if pa.types.is_dictionary(t):
        # Few distinct values (vehicle ids, sources): hash each once, then index.
        words = np.array([int.from_bytes(hashlib.blake2b(str(v).encode(), digest_size=8).digest(), "little")
                          for v in arr.dictionary.to_pylist()] or [0], dtype=np.uint64)
        idx = np.asarray(pc.fill_null(arr.indices, 0)).astype(np.int64)
        return words[idx], nulls
    if pa.types.is_timestamp(t):
        arr = arr.cast(pa.int64())
    elif pa.types.is_boolean(t):
        arr = arr.cast(pa.uint8())
    filled = np.asarray(pc.fill_null(arr, 0))
    if filled.dtype.kind == "f":
        filled = filled.astype(np.float64)
        filled[filled == 0] = 0.0  # -0.0 and 0.0 are one value to every reader
        return filled.view(np.uint64), nulls
    return filled.astype(np.int64).view(np.uint64), nulls


def row_hashes(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Each row's two 64-bit lanes (uint64 arrays): equal rows hash equal, nulls apart from values.

    The digest is their sum; on their own they tell rows apart by content (DISTINCT, groups by a
    key) without comparing values column by column, NaN and -0.0 included.
    """
    n = table.num_rows
    with np.errstate(over="ignore"):
        lanes = [np.full(n, seed, dtype=np.uint64) for seed in _SEEDS]
        for i, col in enumerate(table.columns):
            v, nulls = _values(col)
            salt = np.uint64((i + 1) * 0x2545F4914F6CDD1D & _MASK)
            if nulls is not None:
                v = np.where(nulls, _NULL, v)
            for k, lane in enumerate(lanes):
                lanes[k] = _mix(lane ^ (v + salt + np.uint64(k)))
    return lanes[0], lanes[1]


def digest_table(table: pa.Table) -> Digest:
    """The additive digest of a table's rows (columns in the table's order: callers pass canonical schemas)."""
    n = table.num_rows
    if n == 0:
        return EMPTY
    a, b = (int(lane.sum(dtype=np.uint64)) for lane in row_hashes(table))
    return Digest(n, a, b)
