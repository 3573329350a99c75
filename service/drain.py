"""Graceful drain on SIGTERM: readiness false at once, serve on for `--drain-seconds`, then
uvicorn's own shutdown (stop accepting, finish in-flight requests, run the lifespan's end).

Why the wait: a load balancer or Kubernetes Service stops sending to a pod only after it
sees readiness fail (or the endpoint removed), which takes a probe period or more. uvicorn
closes its listening socket the moment SIGTERM arrives, so requests routed in that window
would be refused. Kubernetes' own advice is a preStop sleep; doing it here also covers
compose, systemd and bare `kill`. uvicorn has no such setting, so the handler wraps its own:
uvicorn installs `Server.handle_exit` with `signal.signal` before the lifespan starts, and
this calls it once the drain is over.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType

log = logging.getLogger("service.drain")


class Drain:
    """Whether this worker is draining, and the SIGTERM handler that starts it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.draining = False

    def install(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Take over SIGTERM, chaining to the handler there now (uvicorn's). False, and
        nothing changed, off the main thread (a test client) or with no Python handler."""
        if threading.current_thread() is not threading.main_thread():
            return False
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return False

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self.draining:
                return
            self.draining = True
            log.info("SIGTERM: not ready; serving %.1f s more, then stopping", self.seconds)
            loop.call_soon_threadsafe(loop.call_later, self.seconds, previous, signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)
        return True
