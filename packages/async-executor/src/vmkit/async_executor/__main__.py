"""``python -m vmkit.async_executor`` runs the command line."""

from __future__ import annotations

from vmkit.async_executor.cli import console_main

if __name__ == "__main__":
    console_main()
