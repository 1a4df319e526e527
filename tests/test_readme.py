"""The README tells the truth where a test can check it: its settings table is one table that
names every setting (and nothing that is not one), its commands table names every command, and it
opens with the two commands that set up and run everything. Its code examples run in
tests/test_lake_demo.py; the daemon-on-the-demo-store recipe is exercised there too."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ingest.surfaces.cli import build_parser
from ingest.wiring.settings import Settings, TspSettings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _section(title: str) -> list[str]:
    body = README.split(f"\n## {title}\n", 1)[1]
    return body.split("\n## ", 1)[0].splitlines()


def _table(title: str) -> list[str]:
    """The rows of the section's one table; fails if anything but a row sits between two rows."""
    lines = _section(title)
    first = next(i for i, line in enumerate(lines) if line.startswith("| "))
    last = max(i for i, line in enumerate(lines) if line.startswith("| "))
    broken = [line for line in lines[first:last + 1] if not line.startswith("|")]
    assert not broken, f"the {title} table is broken by: {broken}"
    return [line for line in lines[first + 2:last + 1]]  # past the header and its rule


def _names(cell: str) -> set[str]:
    return set(re.findall(r"`(FLEETLAKE_[A-Z0-9_]+)`", cell))


def test_the_settings_table_names_every_setting_and_only_settings() -> None:
    rows = _table("Configuration")
    named = set().union(*(_names(row.split("|")[1]) for row in rows))
    # `FLEETLAKE_SAMSARA__CLIENT_ID`, `__CLIENT_SECRET` names the nested ones by suffix
    suffixes = set().union(*(set(re.findall(r"`(__[A-Z_]+)`", row.split("|")[1])) for row in rows))
    expected: set[str] = set()
    for name, field in Settings.model_fields.items():
        if field.annotation is TspSettings:
            expected |= {f"FLEETLAKE_{name.upper()}__{sub.upper()}" for sub in TspSettings.model_fields}
        else:
            expected.add(f"FLEETLAKE_{name.upper()}")
    spelled = named | {f"{n.split('__')[0]}{s}" for n in named if "__" in n for s in suffixes}
    assert expected - spelled == set(), "settings missing from README's table"
    assert {n for n in named if n not in expected} == set(), "README's table names settings that do not exist"


def test_the_commands_table_names_every_command() -> None:
    rows = _table("Commands")
    documented = {m.group(1) for row in rows for m in re.finditer(r"`fleetlake (\w+)", row)}
    documented |= {m.group(1) for row in rows for m in re.finditer(r"/ `(\w+)[ `]", row)}
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) - documented == set(), "commands missing from README's commands table"
    assert documented - set(sub.choices) == set(), "README documents commands the CLI does not have"


def test_it_opens_with_the_two_commands() -> None:
    block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["./scripts/demo.sh", "./scripts/test.sh"]
    assert README.index("```bash") < README.index("\n## ")
    for c in commands:
        assert (ROOT / c).stat().st_mode & 0o111, f"{c} is not executable"
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
