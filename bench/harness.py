"""Throughput and latency of the service against its references, in one run, with wrk.

For each server (service: multipart, raw, batch of 64; no-op FastAPI: multipart, raw;
textbook Keras) and each worker count and concurrency, wrk (keep-alive, 1 thread, so it
takes little of the two cores) runs for --duration seconds after a warm-up, in --repeats
interleaved rounds (`run`). Prints and writes JSON (raw wrk output included) and a
Markdown table.

Usage: python bench/harness.py --store DIR [--duration 10] [--concurrency 1 16 64]
                               [--workers 1 2] [--out bench/results]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serve_checks import start, startup, stop  # noqa: E402
from tests.servers import Server, free_port  # noqa: E402
from tests.uploads import png  # noqa: E402
from training.data import load_idx_dir  # noqa: E402

BOUNDARY = "benchboundary7MA4YWxkTrZu0gW"
LATENCY_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def multipart_body(files: list[bytes], field: str) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="d{i}.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
        + data
        + b"\r\n"
        for i, data in enumerate(files)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def lua_script(
    folder: Path, name: str, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> Path:
    """A wrk script POSTing `body` with these headers (no Content-Type when it is empty)."""
    (folder / f"{name}.body").write_bytes(body)
    script = folder / f"{name}.lua"
    all_headers = {"Content-Type": content_type} if content_type else {}
    all_headers.update(headers or {})
    script.write_text(
        f'local f = io.open("{folder / (name + ".body")}", "rb")\n'
        'wrk.method = "POST"\nwrk.body = f:read("*a")\nf:close()\n'
        + "".join(f'wrk.headers["{key}"] = "{value}"\n' for key, value in all_headers.items())
    )
    return script


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, p50 and p99 latency (ms), and non-2xx count from `wrk --latency`."""

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return round(float(value) * LATENCY_UNITS[unit], 3)

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sum(map(int, socket.groups())) if socket else 0,
    }


def wrk_run(url: str, script: Path, concurrency: int, seconds: float) -> str:
    """The output of one wrk run (keep-alive, 1 thread, `--latency`)."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    # A 10 s timeout: the textbook server takes seconds per request at high concurrency.
    command = [binary, "-t1", f"-c{concurrency}", "-s", str(script), "--latency",
               "--timeout", "10s", f"-d{max(1, round(seconds))}s", url]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def median_run(outs: list[str]) -> dict:
    """The run with the median requests/s among wrk outputs, with every run's requests/s.
    Each run opens new connections, which the kernel spreads over the workers' sockets
    (8/8 to 2/14 for 16 connections): one run measures one such spread, the median of
    several a typical one."""
    stats = sorted((parse_wrk(out) for out in outs), key=lambda s: s["requests_per_s"])
    median = dict(stats[len(stats) // 2])
    median["repeats_requests_per_s"] = [s["requests_per_s"] for s in stats]
    return median


def wrk(
    url: str, script: Path, concurrency: int, duration: float, repeats: int = 1
) -> tuple[dict, list[str]]:
    """A warm-up, then `repeats` runs of wrk: the median run (`median_run`), and the raw
    output of every run."""
    wrk_run(url, script, concurrency, 1)  # warm-up
    outs = [wrk_run(url, script, concurrency, duration) for _ in range(repeats)]
    return median_run(outs), outs


def start_ready(cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> Server:
    """Start a server and wait for its OpenAPI page (the reference apps have no /readyz)."""
    return start(cmd, log, port, env, ready_path="/docs")[0]


def reference_cmd(app: str, port: int, workers: int, factory: bool = False) -> list[str]:
    """A reference app served as the service is (bench/serve_reference.py)."""
    cmd = [sys.executable, str(ROOT / "bench" / "serve_reference.py"), app, "--port", str(port),
           "--workers", str(workers)]  # fmt: skip
    return [*cmd, "--factory"] if factory else cmd


def run(args: argparse.Namespace) -> dict:
    """Every server of a worker count is started together, then measured in interleaved
    rounds: in each round, each (server, request) cell gets one wrk run, so the service
    and its references share the machine's state (this shared machine's speed drifts by
    20-30% over minutes); a ratio is taken within each round, and the median of the rounds'
    ratios reported with the median runs."""
    image = png(load_idx_dir(args.data_dir).x_test[0])  # a real MNIST test digit (a 7)
    model = next(iter(sorted((args.store / "mnist").glob("[1-9]*/model.keras"))))
    results: dict = {"runs": [], "raw": {}, "round_ratios": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scripts = {
            "multipart": lua_script(folder, "multipart", multipart_body([image], "file"),
                                    f"multipart/form-data; boundary={BOUNDARY}"),
            "raw": lua_script(folder, "raw", image, "image/png"),
            "batch64": lua_script(folder, "batch64", multipart_body([image] * 64, "files"),
                                  f"multipart/form-data; boundary={BOUNDARY}"),
        }  # fmt: skip
        servers = {
            "service": lambda port, w: start_ready(
                [sys.executable, "-m", "service.cli", "--store", str(args.store),
                 "--port", str(port), "--workers", str(w), "--max-in-flight", "1024",
                 "--no-access-log"],  # as the references, which log warnings only
                port, folder / "service.log"),
            "noop": lambda port, w: start_ready(
                reference_cmd("bench.reference_apps:noop", port, w), port, folder / "noop.log"),
            "textbook": lambda port, w: start_ready(
                reference_cmd("bench.reference_apps:make_textbook", port, w, factory=True),
                port, folder / "textbook.log", {"BENCH_MODEL": str(model)}),
        }  # fmt: skip
        paths = {
            "service": {"multipart": "/v1/predict", "raw": "/v1/predict",
                        "batch64": "/v1/predict/batch"},
            "noop": {"multipart": "/multipart", "raw": "/raw"},
            "textbook": {"multipart": "/predict"},
        }  # fmt: skip
        if args.skip_textbook:
            del servers["textbook"]
        for workers in args.workers:
            started: dict[str, Server] = {}
            try:
                for name, make in servers.items():
                    started[name] = make(free_port(), workers)
                cells = [(name, kind, started[name].url + path)
                         for name in started for kind, path in paths[name].items()]  # fmt: skip
                for concurrency in args.concurrency:
                    measure_cells(args, results, cells, scripts, workers, concurrency)
            finally:
                for server in started.values():
                    stop(server)
        results["startup"] = startup(args.store, runs=3 if not args.quick else 1, tmp=folder)
    results["ratios"] = ratios(results["runs"], results["round_ratios"])
    return results


def measure_cells(
    args: argparse.Namespace,
    results: dict,
    cells: list[tuple[str, str, str]],
    scripts: dict[str, Path],
    workers: int,
    concurrency: int,
) -> None:
    """Warm each (server, request, url) cell up, then `args.repeats` interleaved rounds of
    one wrk run per cell; the median run of each cell into `results["runs"]`, its raw
    outputs into `results["raw"]`, and each round's service / no-op ratios into
    `results["round_ratios"]`."""
    for _, kind, url in cells:
        wrk_run(url, scripts[kind], concurrency, 1)
    outs: dict[tuple[str, str], list[str]] = {(name, kind): [] for name, kind, _ in cells}
    for _ in range(args.repeats):
        rate = {}
        for name, kind, url in cells:
            out = wrk_run(url, scripts[kind], concurrency, args.duration)
            outs[name, kind].append(out)
            rate[name, kind] = parse_wrk(out)["requests_per_s"]
        for kind in ("multipart", "raw"):
            if rate.get(("noop", kind)) and ("service", kind) in rate:
                key = f"{kind}/w{workers}/c{concurrency}"
                ratio = rate["service", kind] / rate["noop", kind]
                results["round_ratios"].setdefault(key, []).append(round(ratio, 3))
    for (name, kind), raw in outs.items():
        run_ = {"server": name, "request": kind, "workers": workers,
                "concurrency": concurrency, **median_run(raw)}  # fmt: skip
        if kind == "batch64":
            run_["images_per_s"] = round(run_["requests_per_s"] * 64, 1)
        results["runs"].append(run_)
        results["raw"][f"{name}/{kind}/w{workers}/c{concurrency}"] = raw
        print(json.dumps(run_), flush=True)


def ratios(runs: list[dict], round_ratios: dict[str, list[float]] | None = None) -> list[dict]:
    """service / no-op and service / textbook, per request kind, workers and concurrency:
    the ratio of the median runs, and the median of the rounds' own ratios with them all."""
    index = {(r["server"], r["request"], r["workers"], r["concurrency"]): r for r in runs}
    out = []
    for (server, kind, workers, conc), run_ in index.items():
        if server != "service" or kind == "batch64":
            continue
        row = {"request": kind, "workers": workers, "concurrency": conc}
        noop = index.get(("noop", kind, workers, conc))
        textbook = index.get(("textbook", "multipart", workers, conc))
        if noop and noop["requests_per_s"]:
            row["service_over_noop"] = round(run_["requests_per_s"] / noop["requests_per_s"], 3)
        rounds = sorted((round_ratios or {}).get(f"{kind}/w{workers}/c{conc}", []))
        if rounds:
            row["service_over_noop_rounds"] = rounds
            row["service_over_noop_round_median"] = rounds[len(rounds) // 2]
        if textbook and textbook["requests_per_s"] and kind == "multipart":
            row["service_over_textbook"] = round(
                run_["requests_per_s"] / textbook["requests_per_s"], 1
            )
        out.append(row)
    return out


def markdown(results: dict) -> str:
    header = "| server | request | workers | concurrency | req/s | images/s | p50 ms | p99 ms |"
    lines = [header + " non-2xx | socket errors |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        lines.append(
            f"| {r['server']} | {r['request']} | {r['workers']} | {r['concurrency']} | "
            f"{r['requests_per_s']:.0f} | {r.get('images_per_s', '')} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['non_2xx']} | {r['socket_errors']} |"
        )
    lines += ["", "| request | workers | concurrency | service / no-op | median of the "
              "rounds' ratios (all rounds) | service / textbook |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for r in results["ratios"]:
        rounds = ", ".join(map(str, r.get("service_over_noop_rounds", [])))
        lines.append(
            f"| {r['request']} | {r['workers']} | {r['concurrency']} | "
            f"{r.get('service_over_noop', '')} | "
            f"{r.get('service_over_noop_round_median', '')} ({rounds}) | "
            f"{r.get('service_over_textbook', '')} |"
        )
    s = results["startup"]
    lines += ["", f"Start-up to ready: {s['ready_seconds_median']:.2f} s (bare FastAPI "
              f"{s['bare_fastapi_ready_seconds_median']:.2f} s); RSS at ready "
              f"{s['rss_mb_at_ready']:.0f} MB per worker."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("MNIST_DIR"),
        help="MNIST IDX folder (default $MNIST_DIR): the image sent is its first test digit",
    )
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3, help="wrk runs per cell; the median")
    p.add_argument("--skip-textbook", action="store_true")
    p.add_argument("--quick", action="store_true", help="fewer start-up runs (smoke test)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    if args.data_dir is None:
        p.error("say where MNIST is: --data-dir DIR or MNIST_DIR")
    started = datetime.datetime.now(datetime.UTC)
    save(run(args), "harness", started, argv, args.out, markdown)
    return 0


def save(
    results: dict,
    name: str,
    started: datetime.datetime,
    argv: list[str] | None,
    out: Path,
    table: Callable[[dict], str],
) -> None:
    """Add what was run, where and when to `results`; write them as
    `<out>/<name>-<time>.json` and their table as `.md`; print the table."""
    results["meta"] = {
        "date": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "command": " ".join(["python", f"bench/{name}.py", *(argv or sys.argv[1:])]),
        "seconds": round(time.time() - started.timestamp(), 1),
        "load_average_at_end": os.getloadavg(),  # other work on a shared machine
    }
    out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%S")
    (out / f"{name}-{stamp}.json").write_text(json.dumps(results, indent=2))
    (out / f"{name}-{stamp}.md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    sys.exit(main())
