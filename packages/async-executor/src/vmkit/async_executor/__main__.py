"""``python -m vmkit.async_executor`` runs the command line."""

from __future__ import annotations

import sys

from vmkit.async_executor.cli import main

if __name__ == "__main__":
    sys.exit(main())
