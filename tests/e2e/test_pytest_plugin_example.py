"""The README's "Testing chaincode with pytest" example, run as a user runs it.

Method: the first python block of that README section is written to
`tests/test_asset_network.py` in a temporary project whose `chaincode` folder links to
this repository's, and a fresh pytest process runs it; the plugin comes from the
installed `pytest11` entry point, not from this repository's conftest. Both tests must
pass, sharing one network, and no network process may outlive the run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
SECTION = "## Testing chaincode with pytest"
TIMEOUT_S = 180.0


def readme_example() -> str:
    text = (REPOSITORY / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else len(text)]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the section has no python example"
    return match.group(1)


def test_the_readme_example_passes(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "chaincode").symlink_to(REPOSITORY / "chaincode")
    example = project / "tests" / "test_asset_network.py"
    example.write_text(readme_example())

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "basetemp"),
            str(example),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "2 passed" in output
    assert leftover_processes(tmp_path) == [], output


def leftover_processes(folder: Path) -> list[str]:
    """Command lines of running processes that mention `folder`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\x00", b" ").decode()
        except OSError:
            continue
        if str(folder) in command:
            found.append(command)
    return found
