"""The README's lake examples, run as written by tests/test_lake_demo.py on the store `fleetlake demo` made."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


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


def run_readme_examples(cwd: Path, env: dict[str, str]) -> None:
    """Run each example as written, in `cwd`, where `fleetlake demo` left ./fleetlake-data."""
    commands, scripts = _examples()
    assert len(commands) == 3 and len(scripts) == 1
    for argv in commands:
        out = subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", *argv[1:]], cwd=cwd, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and out.stderr == "", (argv, out.stderr)
        assert "acme-freight" in out.stdout or "2026-" in out.stdout, out.stdout  # rows, not an empty result
        if argv == commands[0]:
            counts = [re.findall(r"\d+", ln) for ln in out.stdout.splitlines() if "│ 2026-" in ln]
            assert counts and all(c[-2] == c[-1] for c in counts), out.stdout  # pings == distinct per month
    for script in scripts:
        out = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "live files" in out.stdout and "radius_class" in out.stdout
