"""`mnist-models` sub-commands, through their entry point."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.test_store import publish
from training.store import Store
from training.store_cli import main


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path)
    for _ in range(3):
        publish(store, recipe={"name": "seed"}, created_at="2026-11-24T00:00:00+00:00")
    return store


def run(store: Store, *args: str) -> int:
    return main(["--store", str(store.root), *args])


def test_list_shows_versions_accuracy_and_aliases(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store.set_alias("production", 2)
    real_world = {"uploads_per_kind": 100, "seed": 1, "accuracy": {"desk": 0.97, "uci": 0.82}}
    publish(store, recipe={"name": "best"}, created_at="2026-11-25T00:00:00+00:00",
            real_world=real_world)  # fmt: skip
    assert run(store, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "version", "accuracy", "real-world", "(worst", "kind)", "recipe", "created_at", "aliases"
    ]  # fmt: skip
    assert lines[2].split() == [
        "2", "0.9800", "-", "seed", "2026-11-24T00:00:00+00:00", "production"
    ]  # fmt: skip
    assert lines[4].split() == ["4", "0.9800", "89.5%", "(uci", "82.0%)", "best",
                                "2026-11-25T00:00:00+00:00"]  # fmt: skip
    assert len(lines) == 5


@pytest.mark.parametrize("command", ["list", "verify"])
def test_an_empty_store_says_so(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", str(tmp_path), command]) == 0
    assert capsys.readouterr().out.startswith("no versions in ")


def test_show_prints_the_manifest_with_json(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(store, "show", "3", "--json") == 0
    assert json.loads(capsys.readouterr().out)["version"] == 3


def test_show_prints_a_few_lines(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    store.set_alias("production", 3)
    assert run(store, "show", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "mnist version 3: recipe seed, created 2026-11-24T00:00:00+00:00, aliases: production"
    )
    assert "MNIST test accuracy 0.9800 (loss 0.0000)" in lines[1]
    assert len(lines) <= 10


def test_show_of_a_missing_version_is_one_line(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(store, "show", "9") == 1
    err = capsys.readouterr().err
    assert err == f"mnist-models: error: mnist: no version 9 in {store.dir} (versions: 1, 2, 3)\n"


def test_every_command_words_a_missing_version_alike(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["show", "9"], ["promote", "9"], ["verify", "9"]):
        assert run(store, *command) == 1
        assert capsys.readouterr().err == (
            f"mnist-models: error: mnist: no version 9 in {store.dir} (versions: 1, 2, 3)\n"
        )


@pytest.mark.parametrize("command", [["list"], ["verify"], ["show", "1"]])
def test_a_mistyped_name_beside_other_models_is_an_error(
    store: Store, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--name mnsit list` said 'no versions' and exited 0, `verify` passed (a newcomer)."""
    assert run(store, "--name", "mnsit", *command) == 1
    err = capsys.readouterr().err
    assert err == f"mnist-models: error: no model 'mnsit' in {store.root} (models there: mnist)\n"


def test_store_and_name_may_follow_the_sub_command(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mnist-models list --store models` was 'unrecognized arguments' (a newcomer)."""
    assert main(["list", "--store", str(store.root), "--name", "mnist"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4  # the header and 3 versions
    assert main(["--store", "/nowhere", "promote", "2", "--store", str(store.root)]) == 0
    assert store.aliases() == {"production": 2}  # the later one counts


def test_an_empty_store_is_no_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lost+found").mkdir()  # a volume mounted as the store: no model
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "7").write_text("a file named like a version")
    assert main(["--store", str(tmp_path), "list"]) == 0
    assert capsys.readouterr().out == f"no versions in {tmp_path / 'mnist'}\n"


def test_promote_then_rollback(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(store, "promote", "1") == 0
    assert run(store, "promote", "3", "--alias", "production") == 0
    assert run(store, "rollback") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["'production': unset -> 1", "'production': 1 -> 3", "'production': 3 -> 1"]
    assert store.aliases() == {"production": 1}


def test_verify_fails_on_a_tampered_version(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(store, "verify") == 0
    (store.dir / "2" / "model.keras").write_text("tampered")
    assert run(store, "verify") == 1
    out = capsys.readouterr().out
    assert "version 2: FAILED\n  model.keras: sha256" in out
    assert "version 3: ok" in out


def test_prune_reports_what_it_removed(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    store.set_alias("production", 1)
    assert run(store, "prune", "--keep", "1") == 0
    assert "removed versions: 2" in capsys.readouterr().out
    assert store.versions() == [1, 3]


@pytest.mark.parametrize("command", [["list"], ["show", "1"], ["verify"], ["promote", "1"],
                                     ["rollback"], ["prune", "--keep", "1"]])  # fmt: skip
def test_a_store_that_does_not_exist_is_an_error_not_an_empty_store(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-store"
    assert main(["--store", str(missing), *command]) == 1
    assert capsys.readouterr().err.startswith(f"mnist-models: error: no store at {missing}")
    assert not missing.exists()  # nothing created by asking


def test_promote_refuses_a_version_that_fails_its_checksums(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(store, "promote", "1") == 0
    (store.dir / "2" / "model.keras").write_text("tampered")
    assert run(store, "promote", "2") == 1
    err = capsys.readouterr().err
    assert err.startswith("mnist-models: error: version 2 fails its checksums (model.keras: sha256")
    assert "'production' not moved" in err and "--force moves it anyway" in err
    assert store.aliases() == {"production": 1}
    assert run(store, "promote", "2", "--force") == 0
    out = capsys.readouterr().out
    assert out.startswith("warning: --force: version 2 fails its checksums")
    assert out.endswith("'production': 1 -> 2\n")
    assert store.aliases() == {"production": 2}


def mnist_models(*args: str, stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess:
    """`mnist-models ARGS` in a process without root's right to read and write anything (as
    CI runs: root), so that file permissions apply."""
    command = [sys.executable, "-m", "training.store_cli", *args]
    if os.geteuid() == 0:
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    return subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60)


def test_an_unreadable_file_fails_verify_and_promote_in_one_line(store: Store) -> None:
    (store.dir / "2" / "model.keras").chmod(0)
    proc = mnist_models("--store", str(store.root), "verify", "2")
    assert proc.returncode == 1 and not proc.stderr
    assert proc.stdout == "version 2: FAILED\n  model.keras: unreadable (Permission denied)\n"
    proc = mnist_models("--store", str(store.root), "promote", "2")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "version 2 fails its checksums (model.keras: unreadable" in proc.stderr
    assert store.aliases() == {}


def test_a_read_only_store_is_one_line_and_nothing_changes(store: Store) -> None:
    store.set_alias("production", 1)
    mode = store.dir.stat().st_mode
    store.dir.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        for command in (["promote", "2"], ["prune", "--keep", "1"]):
            proc = mnist_models("--store", str(store.root), *command)
            assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
            assert proc.stderr.endswith(": Permission denied\n")
    finally:
        store.dir.chmod(mode)
    assert store.aliases() == {"production": 1} and store.versions() == [1, 2, 3]


def test_a_reader_that_leaves_early_is_no_traceback(store: Store) -> None:
    read, write = os.pipe()
    os.close(read)  # `mnist-models list | head -1`, head gone: every write is EPIPE
    try:
        proc = mnist_models("--store", str(store.root), "list", stdout=write)
    finally:
        os.close(write)
    assert proc.returncode == 1 and proc.stderr == ""


@pytest.mark.parametrize("name", ["../x", ".aliases.lock", "a/b", ""])
def test_a_name_that_is_no_model_folder_is_refused(
    store: Store, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(store, "--name", name, "rollback")
    assert exit_.value.code == 2
    assert "argument --name: " in capsys.readouterr().err
    assert sorted(p.name for p in store.root.iterdir()) == ["mnist"]


def test_promote_names_a_version_that_does_not_exist(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(store, "promote", "9") == 1
    assert "no version 9 in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "endpoint", "message"),
    [
        ("s3://", None, "an S3 store is s3://BUCKET or s3://BUCKET/PREFIX"),
        ("s3:///x", None, "an S3 store is s3://BUCKET or s3://BUCKET/PREFIX"),
        ("s3://b", "not a url", "Invalid endpoint: not a url (check AWS_ENDPOINT_URL)"),
    ],
)
def test_a_bad_s3_location_is_one_line(
    url: str,
    endpoint: str | None,
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    assert main(["--store", url, "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mnist-models: error: ") and message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "real_world",
    [
        {},
        {"accuracy": {}},
        {"accuracy": "high"},
        "97%",
        {"accuracy": {"uci": "x"}},
        [1],
        {"accuracy": {"uci": 10**400}},
        {"accuracy": {"\x1b[2Juci": 0.9}},
    ],
)
def test_list_and_show_survive_a_manifest_of_another_shape(
    store: Store, capsys: pytest.CaptureFixture[str], real_world: object
) -> None:
    publish(store, recipe={"name": [1]}, created_at=None, real_world=real_world,
            gate="passed")  # fmt: skip
    assert run(store, "list") == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "\x1b" not in out
    code = run(store, "show", "4")
    out, err = capsys.readouterr()
    assert code in (0, 1) and "Traceback" not in err and "\x1b" not in out
    if code:
        assert err.startswith("mnist-models: error: version 4's manifest has fields of another")
