"""Logging for workflow scripts: everything, uncaught errors included, goes to the job's log."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def configure_logging(log_path: str | Path) -> logging.Logger:
    """Send logging and stderr to ``log_path`` so a failed job tells the user where to look.

    The uncaught exception is written to the log by the excepthook and still ends the job with a
    non-zero status, so Snakemake marks it failed and removes its outputs.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(log_path, "w", encoding="utf-8", buffering=1)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(handle)],
        force=True,
    )
    sys.stderr = handle
    logging.captureWarnings(True)
    previous_hook = sys.excepthook

    def log_uncaught(kind, error, trace):  # type: ignore[no-untyped-def]
        logging.getLogger("crsmeta").error("job failed: %s", error, exc_info=(kind, error, trace))
        previous_hook(kind, error, trace)

    sys.excepthook = log_uncaught
    return logging.getLogger("crsmeta")
