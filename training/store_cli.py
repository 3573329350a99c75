"""`mnist-models`: list, show, promote, roll back, verify and prune the versions in a store."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from training.card import real_world_summary, summary
from training.store import Store, StoreError, no_version
from training.stores import model_name, open_store

if TYPE_CHECKING:
    from training.stores import AnyStore


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Sub-commands and their flags; MNIST_STORE supplies the default store."""
    p = argparse.ArgumentParser(prog="mnist-models", description=__doc__)
    _store_options(p, os.environ.get("MNIST_STORE") or "models", "mnist")
    # Also after the sub-command (`list --store models`): each sub-parser has them too, by
    # default absent, so as not to undo the main parser's.
    common = argparse.ArgumentParser(add_help=False)
    _store_options(common, argparse.SUPPRESS, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)
    add = functools.partial(sub.add_parser, parents=[common])
    add("list", help="versions, their accuracy, and the aliases naming them")
    show = add("show", help="a version in a few lines (--json: its whole manifest)")
    show.add_argument("version", type=int)
    show.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    promote = add("promote", help="point an alias at a version")
    promote.add_argument("version", type=int)
    promote.add_argument(
        "--alias", default="production", help="the alias to move (default: %(default)s)"
    )
    rollback = add("rollback", help="point an alias back at its previous version")
    rollback.add_argument(
        "--alias", default="production", help="the alias to move back (default: %(default)s)"
    )
    promote.add_argument(
        "--force",
        action="store_true",
        help="move the alias even if the version fails its checksums (servers will refuse "
        "to load it)",
    )
    verify = add("verify", help="check files against manifest checksums")
    verify.add_argument("version", type=int, nargs="?")
    prune = add(
        "prune",
        help="delete old versions (never aliased ones) and what killed publishes left behind",
    )
    prune.add_argument(
        "--keep", type=int, required=True, help="the newest versions to keep (required; >= 1)"
    )
    return p.parse_args(argv)


def _store_options(parser: argparse.ArgumentParser, store: str, name: str) -> None:
    parser.add_argument(
        "--store",
        default=store,
        help="a folder, or s3://BUCKET/PREFIX (AWS_* variables); default: $MNIST_STORE, else "
        "models",
    )
    parser.add_argument(
        "--name",
        default=name,
        type=model_name,
        help="model name: the folder inside the store (default: mnist)",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mnist-models`."""
    args = parse_args(argv)
    if not args.store.startswith("s3://") and not Path(args.store).is_dir():
        print(f"mnist-models: error: no store at {args.store} (no such folder): name the "
              "folder mnist-train published into with --store", file=sys.stderr)  # fmt: skip
        return 1
    try:
        store = open_store(args.store, args.name)
        # A folder store holding other models: this --name is a typo, not an empty store.
        if isinstance(store, Store) and not store.dir.is_dir() and store.models():
            raise store.no_model()
        return COMMANDS[args.command](store, args)
    except StoreError as exc:
        print(f"mnist-models: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `mnist-models list | head -1`: the reader has what it wanted. The standard
        # library's recipe (signal module docs): no traceback when Python flushes at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a file the store holds: unreadable, read-only, a name too long
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"mnist-models: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


def cmd_list(store: AnyStore, args: argparse.Namespace) -> int:
    """One line per version: number, MNIST test accuracy, real-world accuracy (the mean over
    the kinds of upload, and the worst kind), recipe, created_at, aliases."""
    aliases = store.aliases()
    versions = store.versions()
    if not versions:
        print(f"no versions in {store.location}")
        return 0
    print(f"{'version':>7}  {'accuracy':>8}  {'real-world (worst kind)':<26}  {'recipe':<6}  "
          f"{'created_at':<25}  aliases")  # fmt: skip
    for version in versions:
        try:
            manifest = store.manifest(version)
            accuracy = f"{float(manifest['metrics']['accuracy']):.4f}"
            recipe, created = str(manifest["recipe"]["name"]), str(manifest["created_at"])
            real_world = real_world_summary(manifest.get("real_world"))
        except (StoreError, LookupError, TypeError, AttributeError, ValueError, ArithmeticError):
            accuracy, recipe, created, real_world = "?", "?", "unreadable manifest", "?"
        names = ",".join(sorted(a for a, v in aliases.items() if v == version))
        line = f"{version:>7}  {accuracy:>8}  {real_world:<26}  {recipe:<6}  {created:<25}  {names}"
        print(printable(line))
    return 0


def printable(text: str) -> str:
    """`text` with control characters (a manifest's ESC sequences) shown as escapes, so
    that printing a store's contents cannot drive the terminal."""
    return "".join(c if c == "\n" or c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def cmd_show(store: AnyStore, args: argparse.Namespace) -> int:
    """One version: a few lines (`training.card.summary`), or its manifest as JSON."""
    manifest = store.manifest(args.version)
    if args.json:
        print(json.dumps(manifest, indent=2, sort_keys=True))
    else:
        aliases = sorted(a for a, v in store.aliases().items() if v == args.version)
        try:
            print(printable(summary(manifest, aliases)))
        except (LookupError, TypeError, AttributeError, ValueError, ArithmeticError) as exc:
            raise StoreError(
                f"version {args.version}'s manifest has fields of another shape than "
                f"mnist-train writes ({type(exc).__name__}: {exc}); --json prints it as it is"
            ) from exc
    return 0


def _check_before_moving(store: AnyStore, version: int, alias: str, force: bool) -> bool:
    """Whether `alias` may move to `version`: its files match its manifest, or `force`
    (said in the output). A failing version is refused with one line on stderr."""
    problems = store.verify(version)
    if not problems:
        return True
    listed = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
    if force:
        print(f"warning: --force: version {version} fails its checksums ({listed})")
        return True
    print(f"mnist-models: error: version {version} fails its checksums ({listed}); {alias!r} "
          "not moved (servers would refuse to load it; --force moves it anyway)",
          file=sys.stderr)  # fmt: skip
    return False


def cmd_promote(store: AnyStore, args: argparse.Namespace) -> int:
    """Point the alias at the version, once its checksums pass, remembering the one it
    named for `rollback`."""
    if args.version not in (versions := store.versions()):
        raise no_version(store.name, args.version, store.location, versions)
    if not _check_before_moving(store, args.version, args.alias, args.force):
        return 1
    previous = store.set_alias(args.alias, args.version)
    print(f"{args.alias!r}: {previous if previous is not None else 'unset'} -> {args.version}")
    return 0


def cmd_rollback(store: AnyStore, args: argparse.Namespace) -> int:
    """Point the alias back at the version it named before the last promotion."""
    current = store.aliases().get(args.alias)
    version = store.rollback(args.alias)
    print(f"{args.alias!r}: {current} -> {version}")
    return 0


def cmd_verify(store: AnyStore, args: argparse.Namespace) -> int:
    """Checksums of one or all versions; exit 1 if any file does not match."""
    versions = [args.version] if args.version is not None else store.versions()
    if not versions:
        print(f"no versions in {store.location}")
    failed = 0
    for version in versions:
        problems = store.verify(version)
        failed += bool(problems)
        print(f"version {version}: {'ok' if not problems else 'FAILED'}")
        for problem in problems:
            print(f"  {problem}")
    return 1 if failed else 0


def cmd_prune(store: AnyStore, args: argparse.Namespace) -> int:
    """Remove old versions and leftover staging folders."""
    removed, cleaned = store.prune(args.keep)
    print(f"removed versions: {', '.join(map(str, removed)) or 'none'}")
    print(f"removed staging folders: {', '.join(cleaned) or 'none'}")
    return 0


COMMANDS = {
    "list": cmd_list,
    "show": cmd_show,
    "promote": cmd_promote,
    "rollback": cmd_rollback,
    "verify": cmd_verify,
    "prune": cmd_prune,
}

if __name__ == "__main__":
    sys.exit(main())
