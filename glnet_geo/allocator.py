"""glibc's allocator told to keep the memory inference frees and asks for again.

GLNet's forward pass on the CPU allocates and frees the same large
activations, tens of megabytes each, for every patch. glibc's defaults adapt
its thresholds as it goes: it gives freed memory at the top of the heap back
to the system, and it maps larger blocks afresh each time. So every patch
pays the kernel's page faults again. In a ResNet-50 G->L ``glnet-geo predict``
of a 2448 px scene on 2 cores, that was 3.3 s of system time and about 9 % of
the wall time (``benchmarks/RESULTS.md``).

:func:`keep_freed_memory` fixes the thresholds instead. Blocks of up to 32 MiB
(glibc's largest mmap threshold) come from the heap, and up to 128 MiB of
freed memory at its top is kept for reuse. Larger blocks are still mapped, and
returned to the system when freed. The peak memory stays as it was.

It works best before torch has allocated anything: the ``glnet-geo`` command
calls it first thing, and Dask's local workers get the same settings as
:data:`ENVIRONMENT` when they start. Called later, as
:meth:`~glnet_geo.models.GLNet.for_inference` does for a caller of the Python
API, it kept the page faults away in some runs only (all 5 of one series, 2 of 5 of
another).
"""

from __future__ import annotations

import ctypes
import functools
import platform

#: Blocks up to this size come from the heap (glibc's largest mmap threshold).
MMAP_THRESHOLD = 32 * 2**20

#: Freed memory kept at the top of the heap before it is given back.
TRIM_THRESHOLD = 128 * 2**20

#: The same settings as the environment variables glibc reads when a process starts.
ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
               "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.cache
def keep_freed_memory() -> bool:
    """Fix glibc's thresholds so freed blocks are reused, not mapped again (once a process).

    Returns:
        Whether the allocator took the settings: False off glibc (macOS,
        Windows, musl), where nothing is changed.

    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
