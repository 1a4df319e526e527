"""The manifest's schema, as numbered migrations applied in order in one transaction at open.

A migration is never edited once released: a change is a new number. A file with a newer
version than the last one here is refused (it was written by a newer fleetlake).
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
    CREATE TABLE fleets (
        fleet_id      VARCHAR PRIMARY KEY,
        tsp           VARCHAR NOT NULL,
        status        VARCHAR NOT NULL,          -- consented | backfilling | active | revoked | failed
        consent_at    TIMESTAMP,
        history_start TIMESTAMP,
        error         VARCHAR,
        created_at    TIMESTAMP NOT NULL,
        updated_at    TIMESTAMP NOT NULL
    );
    CREATE TABLE raw_partitions (
        fleet_id     VARCHAR NOT NULL,
        dataset      VARCHAR NOT NULL,
        month        VARCHAR NOT NULL,
        seq          INTEGER NOT NULL,           -- commit number of this window, from 1
        files        VARCHAR[] NOT NULL,
        rows         BIGINT NOT NULL,
        bytes        BIGINT NOT NULL,
        fingerprint  VARCHAR NOT NULL,
        committed_at TIMESTAMP NOT NULL,
        pull_id      VARCHAR,
        PRIMARY KEY (fleet_id, dataset, month)
    );
    CREATE TABLE pull_checkpoints (
        fleet_id     VARCHAR NOT NULL,
        stream       VARCHAR NOT NULL,
        window_key   VARCHAR NOT NULL,
        completed_at TIMESTAMP NOT NULL,
        rows         BIGINT NOT NULL,
        detail       VARCHAR,
        PRIMARY KEY (fleet_id, stream, window_key)
    );
    CREATE TABLE flow_runs (
        run_id      VARCHAR PRIMARY KEY,
        flow        VARCHAR NOT NULL,
        version     INTEGER NOT NULL,
        code_fp     VARCHAR NOT NULL,
        fleet_id    VARCHAR NOT NULL,
        month       VARCHAR NOT NULL,
        input_fp    VARCHAR NOT NULL,
        status      VARCHAR NOT NULL,            -- running | succeeded | failed
        outputs     VARCHAR[],
        stats       JSON,
        error       VARCHAR,
        started_at  TIMESTAMP NOT NULL,
        finished_at TIMESTAMP
    );
    CREATE INDEX flow_runs_window ON flow_runs (flow, version, fleet_id, month);
    """),
    (2, """
    CREATE TABLE credentials (
        fleet_id   VARCHAR PRIMARY KEY,
        sealed     BLOB NOT NULL,               -- Fernet-encrypted token set, never plain
        updated_at TIMESTAMP NOT NULL
    );
    """),
    (3, """
    CREATE TABLE flow_schemas (
        flow        VARCHAR NOT NULL,
        version     INTEGER NOT NULL,
        schema_fp   VARCHAR NOT NULL,            -- an output schema is fixed for a (flow, version)
        first_seen  TIMESTAMP NOT NULL,
        PRIMARY KEY (flow, version)
    );
    """),
    (4, """
    CREATE TABLE consent_nonces (
        nonce      VARCHAR PRIMARY KEY,          -- from a used OAuth state: a second use is refused
        tsp        VARCHAR NOT NULL,
        fleet_id   VARCHAR NOT NULL,
        expires_at TIMESTAMP NOT NULL,           -- the state's own expiry: after it, the state is refused anyway
        used_at    TIMESTAMP NOT NULL
    );
    """),
    (5, """
    CREATE TABLE fleet_months (
        fleet_id  VARCHAR NOT NULL,
        month     VARCHAR NOT NULL,
        pulled_at TIMESTAMP NOT NULL,           -- first time every slice overlapping the month was committed
        PRIMARY KEY (fleet_id, month)
    );
    CREATE TABLE readiness_fired (
        fleet_id    VARCHAR NOT NULL,
        threshold   INTEGER NOT NULL,           -- the latest N complete months had features
        first_month VARCHAR NOT NULL,
        last_month  VARCHAR NOT NULL,
        fired_at    TIMESTAMP NOT NULL,
        delivered   BOOLEAN NOT NULL,           -- the webhook answered 2xx (it is never sent twice)
        PRIMARY KEY (fleet_id, threshold)
    );
    """),
    (6, """
    CREATE TABLE offboardings (
        fleet_id   VARCHAR NOT NULL,             -- the one trace an off-boarded fleet leaves: the audit
        tsp        VARCHAR NOT NULL,
        actor      VARCHAR NOT NULL,             -- the operator (CLI) or 'api-token'
        done_at    TIMESTAMP NOT NULL,
        removed    JSON NOT NULL,                -- counts and keys of what was removed, never data
        PRIMARY KEY (fleet_id, done_at)
    );
    """),
    (7, """
    -- A checkpoint names the dataset it landed (no parsing of connector stream names), and its
    -- slice by the word the code uses: a pull slice, not a "window" (a feature window only).
    CREATE TABLE pull_checkpoints_v7 (
        fleet_id     VARCHAR NOT NULL,
        stream       VARCHAR NOT NULL,
        slice_key    VARCHAR NOT NULL,
        dataset      VARCHAR NOT NULL,
        completed_at TIMESTAMP NOT NULL,
        rows         BIGINT NOT NULL,
        detail       VARCHAR,
        PRIMARY KEY (fleet_id, stream, slice_key)
    );
    INSERT INTO pull_checkpoints_v7
        SELECT fleet_id, stream, window_key,
               CASE WHEN stream LIKE '%/events/%' THEN 'events' ELSE 'pings' END,  -- once, for older rows
               completed_at, rows, detail
        FROM pull_checkpoints;
    DROP TABLE pull_checkpoints;
    ALTER TABLE pull_checkpoints_v7 RENAME TO pull_checkpoints;
    """),
    (8, """
    -- A succeeded run set aside on request (a re-run asked for in the console): the planner no
    -- longer counts it as current, so its window runs again though its inputs and code are the
    -- same. The run itself stays as it was recorded; this row says when, and who asked.
    CREATE TABLE superseded_runs (
        run_id        VARCHAR PRIMARY KEY,
        fleet_id      VARCHAR NOT NULL,
        superseded_at TIMESTAMP NOT NULL,
        requested_by  VARCHAR NOT NULL
    );
    """),
    (9, """
    -- Windows beyond the month (issue 24): a run names its window by key, the month itself for a
    -- month window, "q12:2025-11" for the quote window of the 12 complete months to 2025-11 (whose
    -- partition, `month`, is its last month), "book:q12:2025-11" for the book's. Older runs are
    -- month windows.
    ALTER TABLE flow_runs ADD COLUMN window_key VARCHAR;
    UPDATE flow_runs SET window_key = month;
    """),
    (10, """
    -- A slice still in its stream's lookback (pulled again by every refresh, ingest/pull/lookback.py):
    -- per page, the digest of the records it held when the slice was last committed and its rows
    -- (`<digest>:<rows>`, space separated, in page order), and the slice's rows, so a refresh reads,
    -- validates and merges only the pages whose records changed. Only a hint: a missing row (a
    -- rebuilt manifest) means the slice is read whole.
    CREATE TABLE lookback_pages (
        fleet_id   VARCHAR NOT NULL,
        stream     VARCHAR NOT NULL,
        slice_key  VARCHAR NOT NULL,
        digest     VARCHAR NOT NULL,
        rows       BIGINT NOT NULL,
        pulled_at  TIMESTAMP NOT NULL,
        PRIMARY KEY (fleet_id, stream, slice_key)
    );
    """),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
