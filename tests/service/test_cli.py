"""`mnist-serve`: its refusals (one line on stderr and exit 2, before any worker starts) and
the settings it hands its workers."""

from __future__ import annotations

import os

import pytest

from service.cli import main, worker_environment
from service.settings import ENV_PREFIX, Settings


@pytest.mark.parametrize(
    ("args", "endpoint", "message"),
    [
        (["--store", "s3://"], None, "--store s3://: 's3://': an S3 store is s3://BUCKET"),
        (["--store", "s3://b/../x"], None, "'..' in a bucket, prefix or model name"),
        (["--store", "s3://b"], "not a url", "Invalid endpoint: not a url"),
        (["--port", "70000"], None, "--port: Input should be less than or equal to 65535"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(
    args: list[str],
    endpoint: str | None,
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("mnist-serve: error: ") and message in err, err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--store", "s3://bucket/prefix", "--cache-dir", "/var/cache/mnist", "--workers", "2"],
        ["--no-access-log", "--max-batch", "8", "--poll-interval", "0.5"],
    ],
)
def test_workers_rebuild_the_settings_the_command_line_chose(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    chosen = Settings(_cli_parse_args=args)
    for name, value in worker_environment(chosen).items():
        monkeypatch.setenv(name, value)
    assert Settings() == chosen  # what each uvicorn worker builds from the environment
