"""structlog set-up: JSON lines on stderr (journald keeps them), a console renderer on a
terminal. Standard output is left to the commands' own lines for humans (``process``,
``inspect``, ``demo``), so the two never mix."""

from __future__ import annotations

import logging
import sys

import structlog

_level = "info"


def current_level() -> str:
    """The level of the last :func:`configure_logging` (helper processes log alike)."""
    return _level


def configure_logging(level: str = "info", json: bool | None = None) -> None:
    """Configure structlog once for the process.

    ``json=None`` picks JSON lines unless stderr is a terminal.
    """
    global _level
    _level = level
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(_Stderr()),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger bound with the module name, resolved lazily: it follows ``configure_logging``
    even when created at import time, before logging was configured."""
    return structlog.get_logger(module=name)


class _Stderr:
    """Writes to ``sys.stderr`` as it is at each write (pytest's capture, a redirect)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
