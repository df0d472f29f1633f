"""Shared command-line plumbing: logging set-up and the JSON-or-YAML config arguments every step accepts.

:func:`setup_logging`, which every step calls first, also makes the step safe to watch and to stop: every log line
and the traceback of an uncaught error are redacted (:mod:`workflow_scripts.common.redact`), and Ctrl-C (SIGINT) or
SIGTERM ends the step with one line and exit status 128 + signal number instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from workflow_scripts.common.redact import redact

THIS_FILE = Path(__file__).resolve()
PACKAGE_DIR = THIS_FILE.parents[1]


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    _redact_every_handler()
    sys.excepthook = _excepthook
    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:  # a background job's shell ignores SIGINT: keep that
                signal.signal(signum, _raise_interrupted)


class RedactingFilter(logging.Filter):
    """Redacts a record before any handler formats it: the message with its args, the exception and stack text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it, as it would without this filter
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_every_handler() -> None:
    # libraries imported before this call (transformers, ...) may have handlers of their own
    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised where the step was: `finally` blocks and context managers still clean up."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, _frame) -> None:
    raise Interrupted(signum)


def _excepthook(exc_type, exc, tb) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        signum = getattr(exc, "signum", signal.SIGINT)
        sys.stdout.flush()
        sys.stderr.write(f"interrupted ({signal.Signals(signum).name}){_doing(tb)}\n")
        logging.shutdown()
        sys.stderr.flush()
        # the interpreter would exit 1 after this hook; 128 + n is how a shell and Snakemake recognise a signal
        os._exit(128 + signum)
    sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))


def _doing(tb) -> str:
    """': <step>, in <function> (<file>:<line>)': the step's module and the innermost of its own frames."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    step = spec.name if spec else Path(sys.argv[0]).name
    ours = [
        (frame.f_code.co_qualname, path, line)
        for frame, line in traceback.walk_tb(tb)
        for path in [Path(frame.f_code.co_filename).resolve()]
        if path.is_relative_to(PACKAGE_DIR) and path != THIS_FILE
    ]
    if not ours:
        return f": {step}"
    function, path, line = ours[-1]
    return f": {step}, in {function} ({path.relative_to(PACKAGE_DIR.parent)}:{line})"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def json_arg(text: str):
    """argparse type for structured values passed from Snakemake ``params`` as JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}: {text[:200]!r}") from None
