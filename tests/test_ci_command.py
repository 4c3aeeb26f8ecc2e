"""CI runs exactly the test command README gives (the brief's promise to a newcomer)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("Run the lint and the tests"):]
    command = re.search(r"```bash\n(.+?)\n```", section, re.DOTALL).group(1).strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci_lines[-1] == command
    assert "ruff check" in command and "pytest" in command
