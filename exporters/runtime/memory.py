"""Give the heap that start-up freed back to the operating system, once.

Loading the config (YAML, pydantic's schema building) and the first collection round leave
free memory inside glibc's heap that glibc keeps for reuse rather than returning; an idle
exporter never reuses most of it, so it stays in the process's resident size.
"""

from __future__ import annotations

import ctypes
import gc


def release_free_memory() -> bool:
    """Collect garbage, then ask glibc to return free heap pages (malloc_trim(0)).

    True when glibc trimmed something; False elsewhere (musl, macOS: no malloc_trim), where
    this is only a garbage collection.
    """
    # Cycles from start-up (parsers, schema builders) hold memory until a full collection.
    gc.collect()
    # gc.freeze() is left out: objects it freezes are never collected, so a reloaded
    # config's old objects in reference cycles would stay for good.
    try:
        # The C library already loaded by the interpreter; no new library is mapped.
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))
