"""Which S3 client for the store: boto3, obstore or s3fs, measured against a real S3 server
(SeaweedFS `weed mini`, started here) on what the store does.

    .venv/bin/python bench/s3_clients.py [--rounds 200]

Each client, in a fresh interpreter: its import time; one poll of aliases.json as the
service does it (a conditional GET answered 304); downloading a 5 MB object (a model's
size); and whether it can do the store's two conditional writes (create-only, and
compare-and-swap on an ETag), checked for real. Clients not installed are skipped
(`pip install obstore s3fs`; s3fs pins its own botocore, so try it in a venv of its own
and pass `--python`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.s3 import seaweedfs  # noqa: E402

PROBE = r"""
import json, os, sys, time
t0 = time.perf_counter()
kind, bucket, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
result = {}
if kind == "boto3":
    import boto3, botocore.exceptions
    result["import_s"] = time.perf_counter() - t0
    c = boto3.client("s3")
    etag = c.head_object(Bucket=bucket, Key="aliases.json")["ETag"]
    def poll():
        try:
            c.get_object(Bucket=bucket, Key="aliases.json", IfNoneMatch=etag)
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "304"
    def download():
        return len(c.get_object(Bucket=bucket, Key="model.bin")["Body"].read())
    def create_only(key):
        try:
            c.put_object(Bucket=bucket, Key=key, Body=b"1", IfNoneMatch="*"); return True
        except botocore.exceptions.ClientError: return False
    def cas(key, tag):
        try:
            c.put_object(Bucket=bucket, Key=key, Body=b"2", IfMatch=tag); return True
        except botocore.exceptions.ClientError: return False
    def tag_of(key): return c.head_object(Bucket=bucket, Key=key)["ETag"]
elif kind == "obstore":
    import obstore
    from obstore.store import S3Store
    result["import_s"] = time.perf_counter() - t0
    e = os.environ
    s = S3Store(bucket, endpoint=e["AWS_ENDPOINT_URL"], region=e["AWS_REGION"],
                access_key_id=e["AWS_ACCESS_KEY_ID"],
                secret_access_key=e["AWS_SECRET_ACCESS_KEY"], client_options={"allow_http": True})
    etag = obstore.head(s, "aliases.json")["e_tag"]
    def poll():
        try:
            obstore.get(s, "aliases.json", options={"if_none_match": etag}).bytes()
        except Exception as e:
            assert "NotModified" in type(e).__name__ or "304" in str(e), e
    def download(): return len(obstore.get(s, "model.bin").bytes())
    def create_only(key):
        try: obstore.put(s, key, b"1", mode="create"); return True
        except Exception: return False
    def cas(key, tag):
        try: obstore.put(s, key, b"2", mode={"e_tag": tag}); return True
        except Exception: return False
    def tag_of(key): return obstore.head(s, key)["e_tag"]
else:
    import s3fs
    result["import_s"] = time.perf_counter() - t0
    fs = s3fs.S3FileSystem(endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    etag = fs.info(f"{bucket}/aliases.json")["ETag"]
    def poll():  # s3fs has no conditional GET: a HEAD, compared by hand
        fs.invalidate_cache(); assert fs.info(f"{bucket}/aliases.json")["ETag"] == etag
    def download(): return len(fs.cat_file(f"{bucket}/model.bin"))
    def create_only(key):
        try: fs.pipe_file(f"{bucket}/{key}", b"1", mode="create"); return True
        except Exception: return False
    def cas(key, tag): return None  # no If-Match in s3fs's API
    def tag_of(key): fs.invalidate_cache(); return fs.info(f"{bucket}/{key}")["ETag"]
t = time.perf_counter()
for _ in range(rounds): poll()
result["poll_ms"] = (time.perf_counter() - t) / rounds * 1e3
t = time.perf_counter()
for _ in range(10): assert download() == 5 * 1024 * 1024
result["download_5mb_ms"] = (time.perf_counter() - t) / 10 * 1e3
key = f"probe-{kind}-{os.getpid()}"
result["create_only"] = create_only(key) and not create_only(key)
tag = tag_of(key)
ok = cas(key, tag)
result["compare_and_swap"] = None if ok is None else bool(ok and not cas(key, tag))
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument(
        "--python", action="append", default=[], metavar="KIND=PYTHON",
        help="run a client in another interpreter, e.g. s3fs=/tmp/v/bin/python",
    )  # fmt: skip
    args = parser.parse_args()
    pythons = {"boto3": sys.executable, "obstore": sys.executable, "s3fs": sys.executable}
    pythons.update(dict(item.split("=", 1) for item in args.python))
    with tempfile.TemporaryDirectory() as folder, seaweedfs(Path(folder)) as s3:
        client = s3.client()
        bucket = s3.new_bucket()
        client.put_object(Bucket=bucket, Key="aliases.json", Body=json.dumps({"production": 1}))
        client.put_object(Bucket=bucket, Key="model.bin", Body=b"\1" * (5 * 1024 * 1024))
        env = {**s3.env, "PATH": "/usr/bin:/bin"}
        for kind, python in pythons.items():
            done = subprocess.run([python, "-c", PROBE, kind, bucket, str(args.rounds)],
                                  capture_output=True, text=True, env=env)  # fmt: skip
            if done.returncode:
                last = (done.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{kind:8} not measured: {last}")
                continue
            r = json.loads(done.stdout)
            print(f"{kind:8} import {r['import_s']:.3f} s  poll {r['poll_ms']:.2f} ms  "
                  f"5 MB download {r['download_5mb_ms']:.1f} ms  create-only "
                  f"{r['create_only']}  compare-and-swap {r['compare_and_swap']}")  # fmt: skip


if __name__ == "__main__":
    main()
