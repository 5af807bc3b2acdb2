"""Fabric-style log specs for Python's logging: parse one, apply it, report the active one.

A spec has Fabric's syntax (``FABRIC_LOGGING_SPEC``, the operations ``/logspec`` route)::

    [<logger>[,<logger>...]=]<level>[:[<logger>[,<logger>...]=]<level>...]

e.g. ``peer.privdata,peer.committer=debug:orderer.broadcast=warn:info``.

- A bare level is the default of every logger without a term of its own; the last bare
  level wins, an empty segment counts as ``info``, and without any the default is ``info``.
- Logger names are Python logger names. medledger's loggers are named after their modules
  (``logging.getLogger(__name__)``), so ``peer.endorser`` is the endorser,
  ``peer.privdata`` every module of that package, ``peer`` the whole peer; third-party
  loggers (``grpc``, ``asyncio``, ``aiohttp``) are named the same way. A name covers itself
  and every logger below it, unless a longer name has a term of its own (the longest
  match wins). A trailing dot (``peer.``) covers that logger only: loggers below it that
  exist when the spec is applied keep the level they would have without the term.
- Levels, in any case: ``payload`` (finer than debug), ``debug``, ``info``, ``warn`` or
  ``warning``, ``error``, ``dpanic``, ``panic``, ``fatal``; ``notice`` means info and
  ``critical`` error. Python has nothing above CRITICAL, so dpanic, panic and fatal all
  leave only CRITICAL records.

Applying a spec (`LogLevels.activate`) first puts back every logger level the previous
spec changed, then sets the default on the root logger and each term on its logger, so a
spec replaces the one before it as a whole. `str(spec)` is the normalised form Fabric
reports: the terms sorted, then the default (``peer.endorser=debug:info``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from common.errors import ConfigError

__all__ = [
    "LOG_LEVELS",
    "LogLevels",
    "LogSpec",
    "assignments",
    "level_name",
    "parse_logspec",
    "python_level",
]

_LOG = logging.getLogger(__name__)

_PAYLOAD = logging.DEBUG - 5

_CANONICAL = {
    "payload": "payload",
    "debug": "debug",
    "info": "info",
    "notice": "info",
    "warn": "warn",
    "warning": "warn",
    "error": "error",
    "critical": "error",
    "dpanic": "dpanic",
    "panic": "panic",
    "fatal": "fatal",
}
_PYTHON_LEVELS = {
    "payload": _PAYLOAD,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "dpanic": logging.CRITICAL,
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
_LOGGER_NAME = re.compile(r"[A-Za-z0-9_#-]+(?:\.[A-Za-z0-9_#-]+)*")


@dataclass(frozen=True, slots=True)
class LogSpec:
    """A parsed spec: the default level and (logger as written, level) terms, sorted.

    Levels are canonical names (``warn``, never ``WARNING``); a logger written with a
    trailing dot keeps it, marking an exact-name term.
    """

    default: str = "info"
    terms: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return ":".join(
            [*(f"{name}={level}" for name, level in self.terms), self.default]
        )

    def level_for(self, logger: str) -> str:
        """The level this spec gives `logger`: its exact term, else the longest prefix."""
        terms = dict(self.terms)
        exact = terms.get(f"{logger}.")
        if exact is not None:
            return exact
        parts = logger.split(".")
        for end in range(len(parts), 0, -1):
            level = terms.get(".".join(parts[:end]))
            if level is not None:
                return level
        return self.default


def parse_logspec(text: str) -> LogSpec:
    """The spec `text` describes; ConfigError names the segment that is wrong."""
    default = "info"
    terms: dict[str, str] = {}
    for segment in text.split(":"):
        loggers, equals, level_text = segment.rpartition("=")
        level = _level(level_text, text, segment)
        if not equals:
            default = level
            continue
        if "=" in loggers:
            raise _bad(text, f"bad segment '{segment}'")
        if not loggers:
            raise _bad(text, f"no logger in segment '{segment}'")
        for logger in loggers.split(","):
            if _LOGGER_NAME.fullmatch(logger.removesuffix(".")) is None:
                raise _bad(text, f"bad logger name '{logger}'")
            terms[logger] = level
    return LogSpec(default=default, terms=tuple(sorted(terms.items())))


def python_level(level: str) -> int:
    """The Python logging level of a canonical level name."""
    return _PYTHON_LEVELS[level]


def level_name(python: int) -> str:
    """The canonical level name nearest below a Python level (NOTSET counts as payload)."""
    candidates = [name for name, value in _PYTHON_LEVELS.items() if value <= python]
    return candidates[-1] if candidates else "payload"


def assignments(spec: LogSpec, existing: Iterable[str]) -> dict[str, int]:
    """The Python level to set on each named logger (the root's default excluded).

    Every term sets its logger. An exact term (``name.``) also pins each `existing` logger
    below that name without a term of its own to the level the spec gives it, so that it
    does not inherit the exact term's level.
    """
    terms = dict(spec.terms)
    levels: dict[str, int] = {}
    for written, level in spec.terms:
        name = written.removesuffix(".")
        if written == name and f"{name}." in terms:
            continue  # the exact term of the same name decides this logger
        levels[name] = python_level(level)
    exact = [written.removesuffix(".") for written in terms if written.endswith(".")]
    for logger in existing:
        if logger in terms or f"{logger}." in terms:
            continue
        if any(logger.startswith(f"{name}.") for name in exact):
            levels[logger] = python_level(spec.level_for(logger))
    return levels


class LogLevels:
    """The spec this process runs with, and the logger levels applying it changed."""

    def __init__(self) -> None:
        self._active: LogSpec | None = None
        self._saved: dict[str, int] = {}

    def spec(self) -> LogSpec:
        """The active spec; before any was applied, the root logger's level as default."""
        if self._active is not None:
            return self._active
        return LogSpec(default=level_name(logging.getLogger().getEffectiveLevel()))

    def activate(self, spec: LogSpec) -> None:
        """Replace the active spec: undo the previous one's levels, then apply `spec`."""
        _LOG.info("log spec %s replaces %s", spec, self.spec())  # under the old levels
        self._restore()
        logging.getLogger().setLevel(python_level(spec.default))
        self._apply(assignments(spec, _existing_loggers()))
        self._active = spec

    def _apply(self, levels: Mapping[str, int]) -> None:
        for name, level in levels.items():
            logger = logging.getLogger(name)
            self._saved.setdefault(name, logger.level)
            logger.setLevel(level)

    def _restore(self) -> None:
        for name, level in self._saved.items():
            logging.getLogger(name).setLevel(level)
        self._saved.clear()


LOG_LEVELS = LogLevels()
"""The process's levels: every operations endpoint of the process reads and sets these."""


def _existing_loggers() -> list[str]:
    manager = logging.getLogger().manager
    return [
        name
        for name, logger in list(manager.loggerDict.items())
        if isinstance(logger, logging.Logger)
    ]


def _level(name: str, spec: str, segment: str) -> str:
    """The canonical level `name`; an empty segment (not an empty level) means info."""
    canonical = _CANONICAL.get(name.lower() if name or segment else "info")
    if canonical is None:
        raise _bad(spec, f"bad segment '{segment}'")
    return canonical


def _bad(spec: str, why: str) -> ConfigError:
    return ConfigError(f"invalid logging specification '{spec}': {why}")
