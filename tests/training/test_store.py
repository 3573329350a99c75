"""The versioned store: atomic publish, concurrent publishers, verify, aliases, prune."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest

from training.store import Store, StoreError


def publish(store: Store, payload: str = "weights", **manifest: object) -> int:
    with store.publishing() as staging:
        (staging / "model.keras").write_text(payload)
        (staging / "sub").mkdir()
        (staging / "sub" / "part.bin").write_bytes(payload.encode() * 1000)
        return store.commit(staging, {"metrics": {"accuracy": 0.98}, **manifest})


def test_first_publishes_are_numbered_from_one(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert [publish(store), publish(store)] == [1, 2]
    manifest = store.manifest(2)
    assert manifest["version"] == 2 and manifest["name"] == "mnist"
    assert set(manifest["files"]) == {"model.keras", "sub/part.bin"}
    assert store.verify(1) == [] and store.verify(2) == []
    assert not list(store.dir.glob(".tmp-*"))


def test_only_canonical_numbers_are_versions(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store)
    for name in (".tmp-abc", "07", "0", "latest", "3a"):
        (store.dir / name).mkdir()
    (store.dir / "5").write_text("a file, not a folder")
    assert store.versions() == [1]
    assert publish(store) == 2


def test_version_taken_meanwhile_goes_to_the_next_number(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store)
    with store.publishing() as staging:
        (staging / "model.keras").write_text("late")
        publish(store)  # another publisher takes 2 while this one is staging
        assert store.commit(staging, {}) == 3
    assert store.manifest(3)["version"] == 3


def _publish_many(root: str, count: int, queue: multiprocessing.Queue) -> None:
    store = Store(Path(root))
    queue.put([publish(store, payload=f"{os.getpid()}-{i}") for i in range(count)])


def _watch(root: str, stop: multiprocessing.Event, queue: multiprocessing.Queue) -> None:
    """Check every version as soon as it appears; report any that is not whole."""
    store, bad, seen = Store(Path(root)), [], set()
    while not stop.is_set() or len(seen) < len(store.versions()):
        for version in store.versions():
            if version not in seen:
                seen.add(version)
                problems = store.verify(version)
                if problems:
                    bad.append((version, problems))
    queue.put((sorted(seen), bad))


def test_concurrent_publishers_get_distinct_whole_versions(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue, watch_queue, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    watcher = ctx.Process(target=_watch, args=(str(tmp_path), stop, watch_queue))
    watcher.start()
    workers = [ctx.Process(target=_publish_many, args=(str(tmp_path), 5, queue)) for _ in range(6)]
    for w in workers:
        w.start()
    got = [v for _ in workers for v in queue.get(timeout=60)]
    for w in workers:
        w.join(timeout=30)
    stop.set()
    seen, bad = watch_queue.get(timeout=60)
    watcher.join(timeout=30)
    assert sorted(got) == list(range(1, 31))
    assert bad == []
    assert seen == list(range(1, 31))
    store = Store(tmp_path)
    assert all(store.manifest(v)["version"] == v for v in store.versions())


def _killed_midway(root: str) -> None:
    store = Store(Path(root))
    with store.publishing() as staging:
        (staging / "model.keras").write_text("half of it")
        os.kill(os.getpid(), signal.SIGKILL)


def test_publish_killed_midway_stays_invisible_and_prune_removes_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store)
    proc = multiprocessing.get_context("spawn").Process(
        target=_killed_midway, args=(str(tmp_path),)
    )
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == -signal.SIGKILL
    assert store.versions() == [1]
    assert len(list(store.dir.glob(".tmp-*"))) == 1
    removed, cleaned = store.prune(keep=5)
    assert removed == [] and len(cleaned) == 1
    assert not list(store.dir.glob(".tmp-*"))
    assert publish(store) == 2


def test_prune_leaves_a_live_publish_alone(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.publishing() as staging:
        assert store.prune(keep=1) == ([], [])
        assert staging.is_dir()


def test_verify_catches_a_tampered_missing_or_extra_file(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store)
    folder = store.dir / "1"
    (folder / "model.keras").write_text("weights, altered")
    (folder / "sub" / "part.bin").unlink()
    (folder / "extra.txt").write_text("planted")
    problems = store.verify(1)
    assert problems[0] == "sub/part.bin: missing"
    assert problems[1] == "extra.txt: not in the manifest"
    assert problems[2].startswith("model.keras: sha256 ")
    assert "does not match the manifest's" in problems[2]


def _link_to_a_copy(folder: Path) -> None:
    (folder / "model.keras").rename(folder / "copy.keras")
    (folder / "model.keras").symlink_to(folder / "copy.keras")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["copy.keras"] = manifest["files"]["model.keras"]
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _files_as(value: object) -> object:
    def damage(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps({**manifest, "files": value}))

    return damage


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_link_to_a_copy, "model.keras: a symbolic link, not a file"),
        (_files_as(["model.keras"]), "no usable file list"),
        (_files_as(None), "no usable file list"),
        (_files_as(5), "no usable file list"),
        (_files_as({}), "no usable file list"),
        (_files_as({"model.keras": 5, "sub/part.bin": None}), "does not match the manifest's 5"),
    ],
)
def test_verify_refuses_what_servers_refuse(tmp_path: Path, damage, problem: str) -> None:
    """`mnist-models verify` and `promote` pass a version only if the servers would load
    it (`service.store.verify_folder`): a symlink to an identical copy used to pass, and
    a file list of another shape was a traceback (review)."""
    from service.store import verify_folder

    store = Store(tmp_path)
    publish(store)
    folder = store.dir / "1"
    damage(folder)
    problems = store.verify(1)
    assert any(problem in p for p in problems), problems
    assert verify_folder(folder, json.loads((folder / "manifest.json").read_text()))


def test_a_file_named_manifest_json_below_a_version_is_one_of_its_files(tmp_path: Path) -> None:
    """Only the version's own manifest.json is left out of the checksums, by both sides:
    the servers skipped any file of that name, so such a version passed verify and was
    refused by every server (review)."""
    from service.store import verify_folder

    store = Store(tmp_path)
    with store.publishing() as staging:
        (staging / "model.keras").write_text("weights")
        (staging / "savedmodel").mkdir()
        (staging / "savedmodel" / "manifest.json").write_text("{}")
        store.commit(staging, {})
    folder = store.dir / "1"
    assert "savedmodel/manifest.json" in store.manifest(1)["files"]
    assert store.verify(1) == []
    assert verify_folder(folder, store.manifest(1)) == []


def test_verify_reports_a_broken_manifest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store)
    (store.dir / "1" / "manifest.json").write_text("{not json")
    assert "no usable file list" in store.verify(1)[0]


def test_promote_and_rollback_walk_back_through_history(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for _ in range(3):
        publish(store)
    assert store.set_alias("production", 1) is None
    assert store.set_alias("production", 2) == 1
    assert store.set_alias("production", 3) == 2
    assert json.loads((store.dir / "aliases.json").read_text()) == {"production": 3}
    assert store.rollback("production") == 2
    assert store.rollback("production") == 1
    with pytest.raises(StoreError, match="alias 'production' has no earlier version"):
        store.rollback("production")
    assert store.aliases() == {"production": 1}


def test_alias_to_a_missing_version_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store)
    with pytest.raises(StoreError, match="mnist: no version 4 in"):
        store.set_alias("production", 4)
    assert store.aliases() == {}


def test_rollback_of_an_unset_alias(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store)
    with pytest.raises(StoreError, match="alias 'staging' is not set"):
        store.rollback("staging")


def test_a_rollback_whose_earlier_versions_were_pruned_says_so(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for _ in range(3):
        publish(store)
    store.set_alias("staging", 2)
    store.set_alias("staging", 3)
    assert store.prune(keep=1) == ([1, 2], [])
    with pytest.raises(StoreError, match=r"alias 'staging' has no earlier version to go to "
                       r"\(it named 2, since pruned\)$"):  # fmt: skip
        store.rollback("staging")


def test_a_mistyped_model_name_is_said_and_creates_nothing(tmp_path: Path) -> None:
    publish(Store(tmp_path))
    typo = Store(tmp_path, "mnsit")
    for move in (lambda: typo.set_alias("production", 1), lambda: typo.rollback("production")):
        with pytest.raises(StoreError, match=r"no model 'mnsit' in .* \(models there: mnist\)"):
            move()
    assert typo.prune(keep=1) == ([], [])  # nothing published there: nothing to prune
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist"]


def test_prune_keeps_newest_and_aliased(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for _ in range(6):
        publish(store)
    store.set_alias("production", 2)
    removed, _ = store.prune(keep=2)
    assert removed == [1, 3, 4]
    assert store.versions() == [2, 5, 6]
    assert publish(store) == 7  # numbers are never reused while newer ones exist


def test_an_alias_never_moves_to_a_version_a_prune_is_removing(tmp_path: Path) -> None:
    """`promote` checks the version exists under the lock `prune` holds: checked before,
    version 500 of 600 was pruned between the check and the move (review)."""
    store = Store(tmp_path)
    publish(store)
    publish(store)
    moved: list[object] = []
    with store._alias_lock():  # a prune in progress, about to remove version 2
        mover = threading.Thread(target=lambda: moved.append(_attempt(store.set_alias, 2)))
        mover.start()
        mover.join(0.5)
        assert mover.is_alive()  # waits for the lock
        shutil.rmtree(store.dir / "2")
    mover.join(10)
    assert isinstance(moved[0], StoreError) and "no version 2" in str(moved[0])
    assert store.aliases() == {}


def test_prune_waits_for_an_alias_being_written(tmp_path: Path) -> None:
    """A promote's temporary aliases file is not a leftover to prune's cleanup, nor is
    another prune's work: prune takes the alias lock."""
    store = Store(tmp_path)
    for _ in range(3):
        publish(store)
    pruned: list[object] = []
    with store._alias_lock():
        (store.dir / ".tmp-aliases.json.abc").write_text("{}")  # being written
        pruner = threading.Thread(target=lambda: pruned.append(store.prune(keep=1)))
        pruner.start()
        pruner.join(0.5)
        assert pruner.is_alive() and store.versions() == [1, 2, 3]
        (store.dir / ".tmp-aliases.json.abc").rename(store.dir / "aliases.json")
    pruner.join(10)
    assert pruned == [([1, 2], [])]
    assert store.versions() == [3] and (store.dir / "aliases.json").exists()


def _attempt(set_alias: object, version: int) -> object:
    try:
        return set_alias("production", version)  # type: ignore[operator]
    except StoreError as exc:
        return exc


def test_prune_needs_keep_of_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="--keep must be at least 1, got 0"):
        Store(tmp_path).prune(keep=0)


def test_unwritable_store_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    store = Store(tmp_path / "file" / "store")
    with pytest.raises(StoreError, match="cannot write to the store \\(Not a directory\\)"):
        with store.publishing():
            pass


@pytest.mark.parametrize("body", ['{"production": "x"}', '{"production": 1e400}', "[1]"])
def test_a_damaged_aliases_file_is_one_clear_error(tmp_path: Path, body: str) -> None:
    store = Store(tmp_path)
    store.dir.mkdir(parents=True)
    (store.dir / "aliases.json").write_text(body)
    with pytest.raises(StoreError, match="aliases.json: not a map of alias to version"):
        store.aliases()
