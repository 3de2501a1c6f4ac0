"""``python -m vmkit.perf_bench`` runs the command line."""

from __future__ import annotations

import sys

from vmkit.perf_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
