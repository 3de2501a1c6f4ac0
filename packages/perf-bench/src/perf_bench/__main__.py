"""``python -m perf_bench`` runs the command line."""

from __future__ import annotations

import sys

from perf_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
