"""A writer process for the crash test: three commit rounds, then "done".

    python -m tests.support.crash_worker STORE_URL MANIFEST INPUT_DIR WORK_DIR [S3_ENDPOINT]

Round 1 lands two months, round 2 adds late pings to the first and a new month, round 3
re-ingests everything (which must change nothing). Killing it anywhere and running it again
must end in exactly the state of an uninterrupted run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq

from partitions import Manifest, MonthWriter, open_store
from tests.support.seaweed import s3_options


def main(argv: list[str]) -> int:
    store_url, manifest_path, input_dir, work_dir = argv[:4]
    endpoint = argv[4] if len(argv) > 4 else None
    store = open_store(store_url, s3_options(endpoint) if endpoint else None)
    rounds = [pq.read_table(Path(input_dir) / f"round{i}.parquet") for i in (1, 2)]
    print("started", flush=True)
    with Manifest(Path(manifest_path)) as manifest:
        for batches in (rounds[0], rounds[1], rounds[0].take(list(range(rounds[0].num_rows - 1, -1, -1)))):
            with MonthWriter(store, manifest, "fleet-a", work_dir=Path(work_dir), now_ms=1_800_000_000_000) as w:
                step = max(1, batches.num_rows // 4)
                for i in range(0, batches.num_rows, step):
                    w.add(batches.slice(i, step))
                w.commit()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
