"""The README's quickstart has exactly two commands, and CI runs the second one."""

from __future__ import annotations

import re
import shlex

from tests.conftest import REPO_ROOT


def _quickstart_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_quickstart_has_exactly_two_commands():
    commands = _quickstart_commands()
    assert commands == ["python3 bootstrap.py demo", "python3 bootstrap.py test"]


def test_ci_runs_the_readme_test_command_and_nothing_else():
    script = (REPO_ROOT / ".ci" / "run").read_text()
    lines = [ln.strip() for ln in script.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    runs = [ln for ln in lines if not ln.startswith(("set ", "cd "))]
    assert len(runs) == 1
    assert shlex.split(runs[0].removeprefix("exec ")) == shlex.split(_quickstart_commands()[1])


def test_demo_job_is_the_walk_forward_backtest():
    source = (REPO_ROOT / "bootstrap.py").read_text()
    assert '"backtest", "--walk-forward"' in source
