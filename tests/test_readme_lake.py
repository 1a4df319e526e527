"""Every example of the README's lake section runs, as written, on the store `fleetlake demo` made."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def _examples() -> tuple[list[list[str]], list[str]]:
    text = README.read_text()
    section = text.split("<!-- readme-examples")[1].split("<!-- /readme-examples -->")[0]
    commands, scripts = [], []
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S):
        if lang == "sh":
            commands += [shlex.split(ln) for ln in body.splitlines() if ln.startswith("fleetlake ")]
        elif lang == "python":
            scripts.append(body)
    return commands, scripts


def test_the_readme_lake_examples_run_on_the_demo_store(tmp_path: Path) -> None:
    commands, scripts = _examples()
    assert len(commands) == 3 and len(scripts) == 1
    env = {**os.environ}
    for k in [k for k in env if k.startswith("FLEETLAKE_")]:
        del env[k]  # the README's defaults: ./fleetlake-data
    r = subprocess.run([sys.executable, "-m", "ingest.cli", "demo", "--vehicles", "2", "--history-months", "2",
                        "--ping-interval", "60"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    for argv in commands:
        out = subprocess.run([sys.executable, "-m", "ingest.cli", *argv[1:]], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and out.stderr == "", (argv, out.stderr)
        assert "acme-freight" in out.stdout or "2026-" in out.stdout, out.stdout  # rows, not an empty result
    pings = subprocess.run([sys.executable, "-m", "ingest.cli", *commands[0][1:]], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120).stdout
    counts = [re.findall(r"\d+", ln) for ln in pings.splitlines() if "│ 2026-" in ln]
    assert counts and all(c[-2] == c[-1] for c in counts), pings  # pings == distinct_pings per fleet and month
    for script in scripts:
        out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "live files" in out.stdout and "radius_class" in out.stdout
