"""Logging: structlog to stderr, as readable lines or JSON (one object per line).

Every line goes through one stdlib handler with structlog's ``ProcessorFormatter``: our own
structlog events and the stdlib loggers of the libraries (APScheduler, Alembic, urllib3,
boto) alike, so ``json`` means every line is a JSON object.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

HANDLER_NAME = "bulletin"
# Libraries that are chatty below WARNING. urllib3 must never go below INFO: facebook-sdk puts
# the Page token in URLs and urllib3 logs URLs at DEBUG.
QUIET_LIBRARIES = ("apscheduler", "alembic", "urllib3", "botocore", "boto3", "s3transfer")


class _Deferred:
    """A structlog logger whose import waits for its first use (structlog loads its console
    renderer, and rich with it, when imported: a command that logs nothing need not pay)."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attribute)


def get_logger(name: str) -> FilteringBoundLogger:
    """The logger ``name``, as ``structlog.get_logger(name)`` gives it, structlog imported when
    it is first used; for module-level loggers."""
    return cast("FilteringBoundLogger", _Deferred(name))


def configure(level: str = "info", fmt: str = "text") -> None:
    """Send all logs to stderr; ``fmt`` is ``text`` or ``json``. Calling it again replaces
    the previous configuration (handlers added by others, e.g. pytest's, are kept)."""
    import structlog

    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    tail: list[structlog.typing.Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta
    ]
    if fmt == "json":  # the console renderer formats tracebacks itself
        tail.append(structlog.processors.format_exc_info)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[*tail, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.WARNING))
    logging.getLogger("bulletin").setLevel(numeric)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def configured() -> bool:
    """Whether :func:`configure` has run in this process."""
    return any(h.get_name() == HANDLER_NAME for h in logging.getLogger().handlers)
