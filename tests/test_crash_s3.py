"""The crash soak of tests/test_crash.py against SeaweedFS S3: SIGKILL the month writer at random
points; a rerun must end exactly like a clean run. A file of its own, so that xdist
(--dist loadfile) runs it beside the local-disk soak, not after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_crash import soak


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_equals_a_clean_run_on_s3(tmp_path: Path,
                                                                      request: pytest.FixtureRequest) -> None:
    soak("s3", tmp_path, request)
