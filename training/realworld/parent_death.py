"""Worker processes that die with the process that started them (Linux's parent-death
signal, prctl(2) PR_SET_PDEATHSIG).

loky's workers do not notice their parent's death: a SIGKILLed `mnist-train` (the
out-of-memory killer, a job's deadline) left them blocked for good writing results to a pipe
nobody reads, each holding up to ~260 MB (loky PR #360 fixed only its idle path). The
standard library has no binding for prctl, hence ctypes.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """A worker process's initializer: on Linux, have the kernel send this process SIGKILL
    when the thread that spawned it exits (with its process, `parent`, when that is the
    main thread: call the pool from the main thread), and exit at once if `parent` is
    already gone. Elsewhere nothing. When prctl is missing or refuses, a warning, and the
    worker runs on without the signal, as it would have before. Raises nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError) as exc:  # no libc symbol (static builds), a refusal
        log.warning("worker %d will not die with its parent: prctl failed (%s)", os.getpid(), exc)
        return
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(1)
