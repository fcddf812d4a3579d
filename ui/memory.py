"""Giving memory back when a screen is left, so the app's resident size stays flat for years.

Owns the process's garbage-collection policy: the objects alive once the first screen is up
(modules, the terminal core, Kivy's classes) are frozen out of the cyclic collector; a left
screen's widgets, whose bindings form reference cycles holding their text textures, are
collected at once instead of whenever the collector's counters next say so; and on the idle
screen the heap's free pages go back to the operating system. It never runs on the touch
path: screens are left one frame after the next screen was drawn (Kivy's NoTransition ends
on the following frame), after a tap's feedback and response frames.
"""

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _glibc_malloc_trim()


def freeze_startup_objects() -> None:
    """Move everything alive now out of the cyclic collector's reach.

    These objects live as long as the process; without this every full collection walks
    them all (about 0.1 s for the terminal core and Kivy), and collections come as often as
    the screens create objects.
    """
    gc.collect()
    gc.freeze()


def collect_left_screen() -> None:
    """Free the widgets of the screen just left (their textures go with them)."""
    gc.collect()


def return_free_heap() -> None:
    """Hand the heap's free pages back to the system (glibc keeps them otherwise).

    Building and leaving a screen allocates and frees texture and layout memory between
    long-lived allocations; glibc only returns the top of its heap by itself, so the holes
    would stay resident.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)
