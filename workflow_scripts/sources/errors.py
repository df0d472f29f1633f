"""The exceptions of the source readers, and the one place that turns the known ones into a clear last line.

They live in a module that is never run as ``__main__``: ``python -m pkg.mod`` loads ``mod`` a second time as
``__main__`` when another module imports it, so a class defined in ``mod`` exists twice and an ``except`` in one copy
never catches what the other copy raises.
"""

from __future__ import annotations

import logging
import sys

from workflow_scripts.sources.http import HarvestError

log = logging.getLogger(__name__)


class RecordError(ValueError):
    """A record that cannot be normalized; the message says which field is wrong."""


class UnusableFile(ValueError):
    """A whole input file that holds nothing usable; ``kind`` is its rejects category, ``detail`` says why."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class BadFileError(ValueError):
    """The step cannot go on with its input files; the message names them."""


def run_main(main) -> None:
    """Known failures end with one clear line (files or URL named) and exit status 1, not a traceback."""
    try:
        main()
    except (BadFileError, HarvestError) as exc:
        log.error("%s", exc)
        sys.exit(1)
