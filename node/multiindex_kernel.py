"""The multi-index's compiled kernel (``multiindex_kernel.c``), loaded with ctypes.

The C source is compiled into ``_multiindex_kernel.so`` beside this file when the
package is installed (``hatch_build.py``). Where that failed (no compiler) or the
library does not match this module (``ABI``), ``KERNEL`` is None and the multi-index
answers through its numpy path, which gives the same answer more slowly: the numpy
path is the reference the kernel is tested against. ctypes releases the GIL for the
duration of each call, so queries on other threads run meanwhile.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ABI", "KERNEL", "LIBRARY", "Kernel", "load"]

ABI = 1
"""``MI_ABI`` in the C source: the library's signatures this module calls."""
LIBRARY = Path(__file__).with_name("_multiindex_kernel.so")
"""Where the build puts the compiled library."""

log = logging.getLogger("node.matcher")

_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_I32 = ctypes.c_int32


def _ptr(array: NDArray[Any] | None) -> int | None:
    """The address of a C-contiguous array's data (None for None: a NULL pointer)."""
    if array is None:
        return None
    assert array.flags.c_contiguous
    return int(array.ctypes.data)


class Kernel:
    """Typed calls into the loaded library; the arrays are checked by the caller."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._build_slot = lib.mi_build_slot
        self._build_slot.argtypes = [_P, _I64, _I32, _I32, _I32, _I32, _P, _P, _I32, _I64]
        self._build_slot.restype = ctypes.c_int
        self._probe = lib.mi_probe
        self._probe.argtypes = [_P, _I64, _I32, _P, _P, _I64, _P, _P, _I32, _P, _I32]
        self._probe.argtypes += [_P, _P, _P, _P, _P, _I32, _I32, _P, _P, _P, _I64]
        self._probe.restype = _I64

    def build_slot(
        self,
        rows: NDArray[np.uint64],
        slot: tuple[int, int, int],
        order: NDArray[np.uint32],
        bounds: NDArray[np.int64] | NDArray[np.uint32],
        base: int,
    ) -> None:
        """Counting-sort one slot (``(word, shift, width)``) of ``rows`` into ``order``
        and ``bounds`` (views of the index's arrays), as a stable argsort would."""
        word, shift, width = slot
        n, words = rows.shape
        bounds64 = bounds.dtype == np.int64
        status = self._build_slot(
            _ptr(rows), n, words, word, shift, width, _ptr(order), _ptr(bounds), bounds64, base
        )
        if status != 0:
            raise MemoryError("multi-index kernel: out of memory sorting a slot")

    def probe(
        self,
        rows: NDArray[np.uint64],
        alive: NDArray[np.bool_] | None,
        queries: NDArray[np.uint64],
        index: Any,
        limit: int,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]:
        """``(query, row, distance)`` of every live row within ``limit`` of a query,
        each pair once, in query order (``index`` is the ``MultiIndex`` over ``rows``)."""
        n, words = rows.shape
        nq = queries.shape[0]
        capacity = 64 * nq + 1024
        while True:
            hit_query = np.empty(capacity, dtype=np.int64)
            hit_row = np.empty(capacity, dtype=np.int64)
            hit_dist = np.empty(capacity, dtype=np.int32)
            hits = self._probe(
                _ptr(rows),
                n,
                words,
                _ptr(None if alive is None else alive.view(np.uint8)),
                _ptr(queries),
                nq,
                _ptr(index.order),
                _ptr(index.bounds),
                index.bounds.dtype == np.int64,
                _ptr(index.bounds_at),
                index.slots,
                _ptr(index.slot_word),
                _ptr(index.slot_shift),
                _ptr(index.slot_width),
                _ptr(index.masks),
                _ptr(index.mask_at),
                index.radius,
                limit,
                _ptr(hit_query),
                _ptr(hit_row),
                _ptr(hit_dist),
                capacity,
            )
            if hits < 0:
                raise MemoryError("multi-index kernel: out of memory probing")
            if hits <= capacity:
                return hit_query[:hits], hit_row[:hits], hit_dist[:hits]
            capacity = int(hits)  # a clustered list near many queries: once more, with room


def load(path: Path = LIBRARY) -> Kernel | None:
    """The kernel at ``path``, or None if it is absent, unloadable or of another ABI."""
    if not path.exists():
        log.info("multi-index kernel %s not built: matching with numpy", path.name)
        return None
    try:
        lib = ctypes.CDLL(str(path))
        abi = int(lib.mi_abi())
    except (OSError, AttributeError) as e:
        log.warning("multi-index kernel %s not loaded (%s): matching with numpy", path.name, e)
        return None
    if abi != ABI:
        log.warning(
            "multi-index kernel %s has ABI %d, %d needed (reinstall to rebuild it): "
            "matching with numpy",
            path.name,
            abi,
            ABI,
        )
        return None
    return Kernel(lib)


KERNEL: Kernel | None = load()
"""The loaded kernel, or None: the multi-index then uses its numpy path."""
