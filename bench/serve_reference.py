"""Serve a reference app of `bench/reference_apps.py` the way `mnist-serve` serves the
service (`service.listeners.run_uvicorn`): uvicorn, with `--workers` processes under its own
supervisor, each on a socket of its own, so the ceiling and the service get the same spread
of wrk's connections.

Usage: python bench/serve_reference.py APP --port P [--workers N] [--factory]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.listeners import run_uvicorn  # noqa: E402

HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("app", help="module:attribute, e.g. bench.reference_apps:noop")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--factory", action="store_true")
    args = p.parse_args(argv)
    run_uvicorn(args.app, factory=args.factory, host=HOST, port=args.port,
                workers=args.workers, log_level="warning", access_log=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
