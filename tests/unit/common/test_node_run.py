"""`common.node.run`: the event loop a process runs on, and the optional profile."""

from __future__ import annotations

import asyncio
import importlib.util
import pstats
from pathlib import Path

import pytest

from common.node import EVENT_LOOP_VARIABLE, PROFILE_VARIABLE, loop_factory, run


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_run_returns_the_result_on_uvloop_when_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a preference the loop is uvloop's if it is importable, else asyncio's."""
    monkeypatch.delenv(EVENT_LOOP_VARIABLE, raising=False)
    monkeypatch.delenv(PROFILE_VARIABLE, raising=False)
    expected = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"

    assert run(_loop_module()).split(".")[0] == expected


def test_asyncio_can_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """MEDLEDGER_EVENT_LOOP=asyncio turns uvloop off."""
    monkeypatch.setenv(EVENT_LOOP_VARIABLE, "asyncio")
    monkeypatch.delenv(PROFILE_VARIABLE, raising=False)

    assert loop_factory() is None
    assert run(_loop_module()).startswith("asyncio")


def test_a_profile_is_written_when_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """MEDLEDGER_PROFILE=DIR: one pstats file that saw the coroutine run."""
    monkeypatch.setenv(PROFILE_VARIABLE, str(tmp_path))

    assert run(_loop_module())
    (written,) = tmp_path.glob("*.pstats")
    functions = pstats.Stats(str(written)).stats  # type: ignore[attr-defined]
    assert any(name == "_loop_module" for _, _, name in functions)
