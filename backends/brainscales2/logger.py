"""``pynn.logger``: BrainScaleS-2's logging interface, on Python's :mod:`logging`.

BrainScaleS-2 scripts configure and use loggers like this::

    pynn.logger.default_config(level=pynn.logger.LogLevel.INFO)
    log = pynn.logger.get("my_experiment")
    pynn.logger.set_loglevel(pynn.logger.get("hxcomm"), pynn.logger.LogLevel.WARN)
    log.INFO("Number of spikes: ", 12)

A logger's methods ``TRACE``, ``DEBUG``, ``INFO``, ``WARN``, ``ERROR`` and ``FATAL`` take any number
of arguments and join their ``str()`` (no separator), as BrainScaleS-2's loggers do. Loggers live
under ``cortexsim.brainscales2.<name>`` in :mod:`logging`; ``default_config`` attaches one stream
handler there (it never touches the root logger).
"""

from __future__ import annotations

import logging
import sys
from enum import IntEnum

__all__ = ["LogLevel", "Logger", "default_config", "get", "set_loglevel", "get_loglevel", "reset"]

_ROOT = "cortexsim.brainscales2"
TRACE_LEVEL = 5
logging.addLevelName(TRACE_LEVEL, "TRACE")


class LogLevel(IntEnum):
    """Log levels (values are :mod:`logging` levels)."""

    ALL = 1
    TRACE = TRACE_LEVEL
    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARN = logging.WARNING
    ERROR = logging.ERROR
    FATAL = logging.CRITICAL
    OFF = logging.CRITICAL + 10


class Logger:
    """A named logger with BrainScaleS-2's method names."""

    def __init__(self, name: str):
        self.name = name
        self._logger = logging.getLogger(f"{_ROOT}.{name}" if name else _ROOT)

    def _log(self, level: int, args) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, "".join(str(a) for a in args))

    def TRACE(self, *args):  # noqa: N802 - the hardware package's names
        self._log(TRACE_LEVEL, args)

    def DEBUG(self, *args):  # noqa: N802
        self._log(logging.DEBUG, args)

    def INFO(self, *args):  # noqa: N802
        self._log(logging.INFO, args)

    def WARN(self, *args):  # noqa: N802
        self._log(logging.WARNING, args)

    def ERROR(self, *args):  # noqa: N802
        self._log(logging.ERROR, args)

    def FATAL(self, *args):  # noqa: N802
        self._log(logging.CRITICAL, args)

    def __repr__(self):
        return f"Logger({self.name!r})"


_handler: logging.Handler | None = None


def default_config(level: LogLevel = LogLevel.WARN, fname: str = "", print_location: bool = False,
                   color: bool = False, date_format: str = "RELATIVE") -> None:
    """Log at ``level`` and above to stderr (or to the file ``fname``)."""
    global _handler
    root = logging.getLogger(_ROOT)
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.FileHandler(fname) if fname else logging.StreamHandler(sys.stderr)
    location = " %(module)s:%(lineno)d" if print_location else ""
    _handler.setFormatter(logging.Formatter(f"%(relativeCreated)8.0fms %(levelname)-5s %(name)s{location} %(message)s"))
    root.addHandler(_handler)
    root.setLevel(int(level))


def get(name: str) -> Logger:
    """The logger called ``name``."""
    return Logger(name)


def set_loglevel(logger: Logger, level: LogLevel) -> None:
    """Set the level of one logger."""
    logger._logger.setLevel(int(level))


def get_loglevel(logger: Logger) -> LogLevel:
    """The effective level of one logger."""
    level = logger._logger.getEffectiveLevel()
    return min(LogLevel, key=lambda member: abs(int(member) - level))


def reset() -> None:
    """Remove the handler of :func:`default_config`."""
    global _handler
    if _handler is not None:
        logging.getLogger(_ROOT).removeHandler(_handler)
        _handler = None
