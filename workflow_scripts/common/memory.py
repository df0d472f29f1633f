"""Allocation settings for steps that churn through gigabytes of short-lived numpy arrays.

glibc returns freed memory at the top of its heap (and every block over its mmap threshold) to the OS right away,
so the next array of the same size is faulted in again, page by page; numpy also asks for transparent huge pages on
large arrays, and each such fault zeroes 2 MB at once. On virtual machines a fault is expensive: measured on the
2-core benchmark machine, the duplicate detection of 2.9 million titles spent a third of its time in the kernel.
:func:`reuse_freed_memory` keeps freed memory in the process (what MALLOC_TRIM_THRESHOLD_ and
MALLOC_MMAP_THRESHOLD_ do) and turns numpy's huge-page advice off (what NUMPY_MADVISE_HUGEPAGE=0 does at import).
Peak RSS is unchanged: memory only stops shrinking between arrays. Where a setting is not available (another C
library, another numpy), it is left as it is.

Polars allocates with a jemalloc of its own, which it sets up to hand freed pages back to the OS after 0.5 s; on
the benchmark machine their re-faults were a third of the pair builder's kernel time. :func:`keep_polars_freed_memory`
has it keep them instead, through the override polars reads from ``_RJEM_MALLOC_CONF`` as it is imported: the
2.9M-paper pair building then spends ~5 s less in the kernel (8.5 against 13.6 s) for ~1 GB more peak RSS (2.0 ->
3.0 GB). A step calls it before importing polars; where polars is loaded already it changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

import numpy as np

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper limit on 64-bit systems
TRIM_THRESHOLD = 2**31 - 1  # the largest value mallopt takes (an int): in practice, never trim


POLARS_ALLOCATOR_ENV = "_RJEM_MALLOC_CONF"  # the variable polars' jemalloc reads its settings from
POLARS_KEEP_FREED = "dirty_decay_ms:-1,muzzy_decay_ms:-1"


def keep_polars_freed_memory() -> bool:
    """Have polars' allocator keep freed memory for reuse; True where it applies, i.e. polars is not loaded yet.

    Appended to what the environment holds (jemalloc reads the settings left to right, the last one wins): a parent
    process that imported polars passes polars' own defaults down in this variable, which must not undo it."""
    if "polars" in sys.modules:
        return False
    current = os.environ.get(POLARS_ALLOCATOR_ENV)
    os.environ[POLARS_ALLOCATOR_ENV] = f"{current},{POLARS_KEEP_FREED}" if current else POLARS_KEEP_FREED
    return True


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
