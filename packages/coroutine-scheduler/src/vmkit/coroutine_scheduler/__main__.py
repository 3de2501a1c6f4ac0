"""``python -m vmkit.coroutine_scheduler`` runs the command line."""

from __future__ import annotations

import sys

from vmkit.coroutine_scheduler.cli import main

if __name__ == "__main__":
    sys.exit(main())
