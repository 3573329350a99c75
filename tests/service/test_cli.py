"""`mnist-serve`'s refusals: one line on stderr and exit 2, before any worker starts."""

from __future__ import annotations

import pytest

from service.cli import main


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
