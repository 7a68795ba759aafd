"""The common entry point of the DVC stages: logging set-up and user errors as one message."""

import logging
import signal
import sys
import time
from collections.abc import Callable

from eslp.errors import ESLPError

logger = logging.getLogger("eslp.stage")


def run_stage(name: str, main: Callable[[], None]) -> None:
    """Run a stage's ``main``; report an ``ESLPError`` as one line and exit with status 1.

    Any other exception is a programming error and keeps its traceback.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SIGTERM (from `kill` or a job scheduler) becomes SystemExit, so the stage unwinds like
    # on Ctrl-C and removes its temporary outputs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.perf_counter()
    try:
        main()
    except ESLPError as error:
        logger.error("%s failed: %s", name, error)
        sys.exit(1)
    logger.info("%s finished in %.1f s", name, time.perf_counter() - started)
