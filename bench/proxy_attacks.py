"""Issue 15's slow-client figures through the real nginx (deploy/nginx/nginx.conf):

    MNIST_DIR=../shared/data/mnist .venv/bin/python bench/proxy_attacks.py

128 connections trickling a body a byte a second, then 10,000 connections that never finish
their headers, each held while a client at another address sends predictions; the attacks
of tests/deploy/test_proxy.py, with their counts printed.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.deploy.test_proxy import half_sent_headers, slow_bodies  # noqa: E402
from tests.keras_files import publish_layers, random_layers  # noqa: E402
from tests.servers import nginx_in_front, serve  # noqa: E402
from training.store import Store  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = Store(folder / "store")
        publish_layers(store, random_layers())
        flags = ("--workers", "2", "--metrics-dir", str(folder / "metrics"), "--no-access-log")
        with (
            serve(store.root, folder, *flags) as server,
            nginx_in_front(server.url.removeprefix("http://"), folder) as proxy,
        ):
            for name, attack in (("128 slow bodies", slow_bodies),
                                 ("10,000 half-sent headers", half_sent_headers)):  # fmt: skip
                result = asdict(attack(server, proxy))
                statuses = result.pop("statuses")
                good = statuses.count(200)
                print(f"{name}: {good} of {len(statuses)} good predictions answered 200 "
                      f"({100 * good / len(statuses):.2f}%); {result}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
