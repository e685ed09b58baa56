"""structlog in front of the standard library: one format for our lines and the libraries'.

On a terminal the lines are for people; under systemd (or whenever stderr is not a
terminal) they are JSON, one object per line, for the journal and log shippers.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal, TextIO

import structlog

from gateway.cli.journal import JournalHandler, journal_socket

Format = Literal["auto", "console", "json"]


def configure(level: str = "info", fmt: Format = "auto", stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    use_json = fmt == "json" or (
        fmt == "auto" and (not stream.isatty() or "JOURNAL_STREAM" in os.environ)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    journal = journal_socket() if fmt == "auto" else None
    handler: logging.Handler
    if journal is not None:  # under systemd: the journal's own fields, not text to parse
        handler = JournalHandler(journal)
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info if use_json else _identity,
                    renderer,
                ],
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pymodbus logs every frame at debug, and every failed request as an error with a dump
    # of the last frames; the drivers report what matters, once per change of a device's
    # health and with its name (drivers/health.py).
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _identity(
    logger: object, name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return event_dict
