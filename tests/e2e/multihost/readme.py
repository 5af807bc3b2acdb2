"""The admin steps of a generated deployment, run as its READMEs tell an operator to.

`network generate` writes, in each orderer's and peer's README.txt, the command that
joins it to its channels (curl against the orderer's participation API; `medledger
channel join` for a peer), to be run inside the node's folder, and in the output
folder's README.txt the `medledger chaincode install|approve|commit` commands, to be
run inside the output folder. `join_commands` and `lifecycle_commands` read them back;
`run_command` runs one line from its folder: `medledger …` in this process
(`network.cli.main`, so no interpreter starts per command), anything else (curl) as a
process. A line that fails fails the test with its output.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import subprocess
from pathlib import Path

from network.cli import main

__all__ = ["join_commands", "lifecycle_commands", "run_command"]

COMMAND_TIMEOUT_S = 60.0
_INDENT = "    "


def join_commands(node_folder: Path) -> list[str]:
    """The channel-join commands of a node's README.txt (none for other nodes)."""
    return [
        line.strip()
        for line in _indented(node_folder / "README.txt")
        if line.strip().startswith(("curl ", "medledger channel join "))
    ]


def lifecycle_commands(out_dir: Path) -> list[str]:
    """The output folder README's `medledger chaincode …` commands, in order."""
    return [
        line.strip()
        for line in _indented(out_dir / "README.txt")
        if line.strip().startswith("medledger chaincode ")
    ]


def run_command(line: str, *, cwd: Path) -> str:
    """Run one README command inside `cwd`; its output (stdout, then stderr).

    Raises:
        AssertionError: the command exited with an error, or curl got an error answer.
    """
    words = shlex.split(line)
    if words[0] == "medledger":
        out, err = io.StringIO(), io.StringIO()
        with (
            contextlib.chdir(cwd),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = main(words[1:])
        output = out.getvalue() + err.getvalue()
    else:
        result = subprocess.run(
            [*words[:1], "--silent", "--show-error", "--fail-with-body", *words[1:]],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        code, output = result.returncode, result.stdout + result.stderr
    assert code == 0, f"`{line}` in {cwd} exited with {code}:\n{output}"
    return output


def _indented(readme: Path) -> list[str]:
    return [
        line for line in readme.read_text().splitlines() if line.startswith(_INDENT)
    ]
