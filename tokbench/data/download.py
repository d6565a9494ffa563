"""``tokbench datasets download``: fetch public benchmark data that tokbench can read but does not ship.

Only the TokBench release is downloadable (CC-BY-4.0 on the Hugging Face hub). UCF-101 and ImageNet have
their own terms and sites; users bring those folders themselves (see ``tokbench.data.external``).
Offline, or without huggingface_hub, the command fails in one line saying why.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable, Optional

from tokbench.errors import BadInputError, TokbenchError
from tokbench.weights import cache_root

TOKBENCH_REPO = "Junfeng5/TokBench"


class DownloadError(TokbenchError):
    """A dataset could not be fetched (offline, missing client library, incomplete snapshot)."""


def default_dest(name: str) -> Path:
    return cache_root() / "datasets" / name


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__


def download_tokbench(dest: Optional[str | Path] = None, revision: Optional[str] = None) -> Path:
    """Download hf://datasets/Junfeng5/TokBench into ``dest`` (default <tokbench cache>/datasets/TokBench)
    as plain files, and return the release root that ``tokbench:<root>`` accepts."""
    dest = Path(dest).expanduser() if dest is not None else default_dest("TokBench")
    where = f"hf://datasets/{TOKBENCH_REPO}"
    if os.environ.get("TOKBENCH_OFFLINE"):
        raise DownloadError(f"cannot download {where}: TOKBENCH_OFFLINE is set")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DownloadError(f"cannot download {where}: huggingface_hub is not installed "
                            f"(pip install huggingface_hub)") from None
    try:
        path = Path(snapshot_download(repo_id=TOKBENCH_REPO, repo_type="dataset", revision=revision,
                                      local_dir=str(dest)))
    except Exception as e:  # offline, DNS, HTTP, disk: every failure is one line
        raise DownloadError(f"cannot download {where} to {dest} ({_one_line(e)}); on a machine with "
                            f"network run `tokbench datasets download tokbench --dest DIR` and copy DIR here") from None
    from tokbench.data.tokbench_release import find_release_root

    try:
        return find_release_root(path)
    except BadInputError as e:
        raise DownloadError(f"downloaded {where} to {path} but it is not a TokBench release ({e})") from None


DOWNLOADS: dict[str, Callable[..., Path]] = {"tokbench": download_tokbench}


def download_dataset(name: str, dest: Optional[str | Path] = None) -> Path:
    """Dispatch for the CLI; an unknown name lists the downloadable ones."""
    if name not in DOWNLOADS:
        raise BadInputError(f"cannot download dataset {name!r}; downloadable: {', '.join(DOWNLOADS)} "
                            f"(UCF-101 and ImageNet are read from your own folders: ucf101:<root>, imagenet:<root>)")
    return DOWNLOADS[name](dest)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tokbench datasets download`` for the CLI to mount."""
    parser.add_argument("name", choices=sorted(DOWNLOADS), help="dataset to download")
    parser.add_argument("--dest", default=None, help="target folder (default: <tokbench cache>/datasets/<name>)")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="tokbench datasets download")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        path = download_dataset(args.name, args.dest)
    except TokbenchError as e:
        print(f"error: {e}")
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
