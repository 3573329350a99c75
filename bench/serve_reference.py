"""Serve a reference app of `bench/reference_apps.py` the way `mnist-serve` serves the
service: one worker in this process, or several under `service.supervisor`, each with its
own SO_REUSEPORT socket. The ceiling and the service then get the same spread of wrk's
connections over their workers (under uvicorn's shared socket the first worker to wake
could take all of them, and a ceiling measured that way would be partly luck).

Usage: python bench/serve_reference.py APP --port P [--workers N] [--factory]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.supervisor import Supervisor, listening_socket  # noqa: E402

HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("app", help="module:attribute, e.g. bench.reference_apps:noop")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--factory", action="store_true")
    args = p.parse_args(argv)
    options = {"app": args.app, "factory": args.factory, "host": HOST, "port": args.port,
               "log_level": "warning"}  # fmt: skip
    if args.workers == 1:
        uvicorn.run(**options)
        return 0
    with listening_socket(HOST, args.port, listen=False):
        return Supervisor(args.workers, options, grace_seconds=5).run()


if __name__ == "__main__":
    sys.exit(main())
