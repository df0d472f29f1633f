"""Allocation settings for steps that churn through gigabytes of short-lived numpy arrays.

glibc returns freed memory at the top of its heap (and every block over its mmap threshold) to the OS right away,
so the next array of the same size is faulted in again, page by page; numpy also asks for transparent huge pages on
large arrays, and each such fault zeroes 2 MB at once. On virtual machines a fault is expensive: measured on the
2-core benchmark machine, the duplicate detection of 2.9 million titles spent a third of its time in the kernel.
:func:`reuse_freed_memory` keeps freed memory in the process (what MALLOC_TRIM_THRESHOLD_ and
MALLOC_MMAP_THRESHOLD_ do) and turns numpy's huge-page advice off (what NUMPY_MADVISE_HUGEPAGE=0 does at import).
Peak RSS is unchanged: memory only stops shrinking between arrays. Where a setting is not available (another C
library, another numpy), it is left as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

import numpy as np

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper limit on 64-bit systems
TRIM_THRESHOLD = 2**31 - 1  # the largest value mallopt takes (an int): in practice, never trim


def reuse_freed_memory() -> dict[str, bool]:
    """Apply both settings; which ones took."""
    done = {"glibc": False, "numpy_no_huge_pages": False}
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
        done["glibc"] = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(
            mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        pass
    core = getattr(np, "_core", None) or getattr(np, "core", None)  # numpy 2 / numpy 1
    setter = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if setter is not None:
        setter(False)
        done["numpy_no_huge_pages"] = True
    log.debug("allocation settings applied: %s", done)
    return done
