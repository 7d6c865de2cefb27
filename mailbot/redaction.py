"""Redaction of log output: NIKs and phone numbers never reach a log file.

Log lines carry reasons and exception texts that may quote a citizen's mail (a
header value, a decoding error). A filter on every log handler masks identity
numbers in the formatted message and in any traceback, whichever module logged.
"""

from __future__ import annotations

import logging

from mailbot.identity import mask

_TRACEBACKS = logging.Formatter()


class MaskingFilter(logging.Filter):
    """Masks NIKs and phone numbers in a record before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text once it is set: fill it in masked.
            record.exc_text = mask(_TRACEBACKS.formatException(record.exc_info))
        return True


def install_masking(logger: logging.Logger | None = None) -> None:
    """Put the masking filter on every handler of the logger (default: root)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
