"""Prebuilt guest programs shipped with the package (static RISC-V 64 Linux executables).

They are the benchmark workloads and a hello-world, built from ``guest/*.c`` in the source tree
with ``riscv64-linux-gnu-gcc -O2 -static -s``:

* ``hello``: stdio smoke test.
* ``crc32 [BYTES]``: bitwise CRC-32 over a generated buffer (integer, branchy).
* ``sieve [LIMIT]``: sieve of Eratosthenes (memory bound).
* ``matmul [N]``: N x N double-precision matrix multiply (floating point).
* ``exits [exit|abort|segv|null|loop|atexit]``: ways to end (exit 3, return 42, SIGABRT, a
  wild store to 0xdead0000, a NULL read, a runaway loop, buffered output at exit).
* ``sandbox PATHS...``: tries to open each path and prints what happened, then looks at its cwd.
* ``pthreads``: six threads sharing a mutex, atomics, thread-local storage and detached threads
  (``guest/threads/basic.c``, built with ``-pthread``).
"""

from __future__ import annotations

import pathlib

__all__ = ["names", "path"]

_HERE = pathlib.Path(__file__).resolve().parent


def names() -> list[str]:
    """Names of the bundled programs, sorted."""
    return sorted(
        p.name for p in _HERE.iterdir() if p.is_file() and not p.name.startswith(("_", "."))
    )


def path(name: str) -> pathlib.Path:
    """Path of the bundled program ``name``; raises KeyError naming the choices when unknown."""
    candidate = _HERE / name
    if "/" in name or name.startswith(("_", ".")) or not candidate.is_file():
        raise KeyError(f"no bundled sample {name!r}; choose one of {', '.join(names())}")
    return candidate
