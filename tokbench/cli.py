"""Command line: a thin layer over the Python API (tokbench.run, tokbench.list_tokenizers, ...)."""
from __future__ import annotations

import argparse
import sys
from typing import Optional

from tokbench.check import add_check_parser, add_gate_options
from tokbench.errors import TokbenchError
from tokbench.registry import UnknownNameError


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) if rows else len(c) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def cmd_list(args) -> int:
    from tokbench.suites import get_suite, list_suites
    from tokbench.tokenizers.registry import TOKENIZERS, list_tokenizers, load_plugins, weights_status

    load_plugins(args.plugin)

    rows = []
    families = {f.lower() for f in (args.family or [])}
    for name in list_tokenizers():
        entry = TOKENIZERS.get(name)
        s = entry.spec
        if families and s.family.lower() not in families:
            continue
        frame_rule = (f"1+{s.temporal_factor}k" if s.causal_first_frame else
                      (f"{s.temporal_factor}k" if s.temporal_factor > 1 else "any"))
        size = ((f"{s.codebooks} x " if s.codebooks > 1 else "") + f"codebook {s.codebook_size}" if s.codebook_size
                else (f"{s.latent_channels} ch" if s.latent_channels else ""))
        factor = ("1D" if (s.spatial_factor, s.temporal_factor) == (1, 1) and s.kind in ("discrete", "continuous")
                  else f"{s.temporal_factor}x{s.spatial_factor}x{s.spatial_factor}")
        if s.input_size:
            factor += f" ({s.input_size}px in)"
        status = weights_status(entry)
        rows.append({"name": name, "family": s.family, "kind": s.kind, "modalities": "+".join(sorted(s.modalities)),
                     "range": f"[{s.input_range[0]:g},{s.input_range[1]:g}]",
                     "factor": factor, "frames": frame_rule,
                     "latent": size, "published": s.published or "", "weights": status["weights"],
                     "path": status["path"]})
    if families and not rows:
        known = sorted({TOKENIZERS.get(n).spec.family for n in list_tokenizers()})
        print(f"error: no tokenizer of family {', '.join(sorted(families))}; families: {', '.join(known)}",
              file=sys.stderr)
        return 2
    print(_table(rows, ["name", "family", "kind", "modalities", "range", "factor", "frames", "latent", "published",
                        "weights", "path"]))
    if families:
        return 0
    print()
    srows = []
    for name in list_suites():
        su = get_suite(name)
        srows.append({"suite": name, "modality": su.modality, "datasets": ",".join(su.datasets),
                      "metrics": ",".join(su.metrics), "resolutions": ",".join(map(str, su.resolutions))})
    print(_table(srows, ["suite", "modality", "datasets", "metrics", "resolutions"]))
    return 0


def cmd_run(args) -> int:
    from tokbench.pipeline import RunConfig, run
    from tokbench.tokenizers.registry import load_plugins

    load_plugins(args.plugin)
    cfg = RunConfig(tokenizer=args.tokenizer, suite=args.suite, resolutions=args.resolution, protocol=args.protocol,
                    device=args.device, dtype=args.dtype, checkpoint=args.checkpoint, out=args.out, limit=args.limit,
                    batch_size=args.batch_size, clip_frames=args.clip_frames, quiet=args.quiet,
                    skip_bad=args.skip_bad, allow_unsafe_checkpoint=args.allow_unsafe_checkpoint,
                    cache_dir=args.cache_dir, datasets=args.data, name=args.name, metrics=args.metrics,
                    allow_unbinned_resolution=args.allow_unbinned_resolution,
                    allow_missing_evaluators=args.allow_missing_evaluators)
    report = run(cfg)
    print(report.format())
    print(f"report written to {report.path}")
    if args.check:
        from tokbench.check import gate

        return gate(args.check, report, args)
    return 0


def cmd_report(args) -> int:
    from tokbench.report import load_report

    try:
        report = load_report(args.run)
    except FileNotFoundError as e:
        raise TokbenchError(str(e)) from None
    print(report.format(args.metric))
    return 0


def cmd_datasets(args) -> int:
    from tokbench.data import commands

    if args.action == "list":
        import pandas as pd

        table = commands.list_datasets(args.names or None)
        with pd.option_context("display.max_rows", None, "display.width", 200):
            print(table.astype(object).where(table.notna(), "").to_string(index=False))
    elif args.action == "build":
        for path in commands.build(args.names or None, force=args.force):
            print(path)
    elif args.action == "verify":
        problems = commands.verify(args.names or None)
        for p in problems:
            print(f"problem: {p}")
        print("verified: every source and built file matches its pin" if not problems
              else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    elif args.action == "show":
        if len(args.names) != 1 or not args.out:
            raise TokbenchError("usage: tokbench datasets show SUITE_OR_DATASET --out sheet.png")
        print(commands.show(args.names[0], args.out))
    elif args.action == "download":
        from tokbench.data.download import download_dataset

        if len(args.names) != 1:
            raise TokbenchError("usage: tokbench datasets download tokbench [--dest DIR]")
        print(download_dataset(args.names[0], args.dest))
    return 0


def cmd_weights(args) -> int:
    import tokbench.evaluators  # noqa: F401  (registers PARSeq and antelopev2 weights)
    import tokbench.tokenizers  # noqa: F401  (registers tokenizer checkpoints)
    from tokbench import weights, weights_catalog  # noqa: F401  (the catalog registers the standard files)

    if args.action == "status":
        rows = [{**r, "present": "present" if r["present"] else "missing"} for r in weights.status()]
        print(_table(rows, ["name", "file", "present", "path", "description"]))
    elif args.action == "path":
        if not args.name:
            raise TokbenchError("usage: tokbench weights path NAME")
        print(weights_catalog.weight_path(args.name))
    elif args.action == "download":
        names = [args.name] if args.name else [r["name"] for r in weights.status() if not r["present"]]
        for name in names:
            print(weights_catalog.download(name))
    return 0


def cmd_stats(args) -> int:
    from tokbench.stats import build_stats

    result = build_stats(args.dataset, resolution=args.resolution, device=args.device, limit=args.limit,
                         extractor=args.extractor, force=args.force)
    print(f"{'cached' if result.cached else 'built'} reference statistics: {result.path}")
    return 0


PLUGIN_HELP = ("import MODULE (name or .py file) first; it registers tokenizers with register_tokenizer "
               "(installed packages can use the entry-point group tokbench.tokenizers instead)")


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are one line naming the option (the full usage is one --help away), exit code 2."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (0 or a negative count is a mistake, not "everything")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive (leave the option out to use every item)")
    return value


def build_parser() -> argparse.ArgumentParser:
    from tokbench import __version__

    p = OneLineParser(prog="tokbench", description="Benchmark how much fine detail visual tokenizers keep.")
    p.add_argument("--version", action="version", version=f"tokbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("list", help="registered tokenizers (with weights status) and suites")
    sp.add_argument("--family", "-f", nargs="+", help="only tokenizers of these families (e.g. llamagen omnitokenizer)")
    sp.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    sp.set_defaults(func=cmd_list)

    sp = sub.add_parser("run", help="reconstruct a suite through a tokenizer and score it")
    sp.add_argument("--tokenizer", "-t", required=True, help="NAME[:key=value,...], e.g. jpeg:quality=90")
    sp.add_argument("--suite", "-s", default="text-face", help="suite to run (default: text-face; see tokbench list)")
    sp.add_argument("--resolution", "-r", type=positive_int, nargs="+",
                    help="evaluation sizes; TokBench bins exist for 256 512 1024 (video 256 480) (default: the suite's)")
    sp.add_argument("--allow-unbinned-resolution", action="store_true",
                    help="run text/face at a size without TokBench bins (scores over all instances, no S/M/L/Mean)")
    sp.add_argument("--protocol", default="offline",
                    help="offline (default), tokbench (replica of the official scripts, for the published rows) or"
                         " tokbench-clean; NAME:official|clean[,rule=value] swaps the input rules")
    sp.add_argument("--allow-missing-evaluators", action="store_true",
                    help="under tokbench protocols, score what is available when evaluator weights are missing")
    sp.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    sp.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"],
                    help="tokenizer precision (default: fp32)")
    sp.add_argument("--checkpoint", help="local checkpoint file or folder for the tokenizer")
    sp.add_argument("--out", default="reports", help="folder for reports (default: reports/)")
    sp.add_argument("--name", help="run folder name (default: derived from the configuration)")
    sp.add_argument("--limit", type=positive_int, help="first N items of each dataset (N >= 1; default: all)")
    sp.add_argument("--batch-size", type=positive_int, default=8,
                    help="images per tokenizer call (default: 8; videos go one at a time)")
    sp.add_argument("--clip-frames", type=positive_int, help="frames per video clip (default: the tokenizer's)")
    sp.add_argument("--data", action="append", help="replace the suite's data, e.g. tokbench:/data/TokBench")
    sp.add_argument("--metrics", nargs="+", help="only these of the suite's metrics (default: all)")
    sp.add_argument("--cache-dir", help="cache folder (default: $TOKBENCH_CACHE or ~/.cache/tokbench)")
    sp.add_argument("--skip-bad", action="store_true", help="skip unreadable items (listed in the report)")
    sp.add_argument("--allow-unsafe-checkpoint", action="store_true",
                    help="allow checkpoints that need full pickle loading (can execute code)")
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    sp.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    sp.add_argument("--check", metavar="BASE",
                    help="gate the finished run against BASE (report folder or *.tokbench.json)")
    add_gate_options(sp, prefix="check-")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("report", help="print the summary of a run folder")
    sp.add_argument("run")
    sp.add_argument("--metric", action="append", help="only these metrics")
    sp.set_defaults(func=cmd_report)

    sp = sub.add_parser("datasets", help="embedded datasets: list | build | verify | show; download tokbench")
    sp.add_argument("action", choices=["list", "build", "verify", "show", "download"])
    sp.add_argument("names", nargs="*", help="datasets or suites (default: all embedded)")
    sp.add_argument("--out", help="contact sheet PNG (show)")
    sp.add_argument("--dest", help="download folder (download)")
    sp.add_argument("--force", action="store_true", help="rebuild even when built (build)")
    sp.set_defaults(func=cmd_datasets)

    sp = sub.add_parser("weights", help="standard weights files: status | path NAME | download [NAME]")
    sp.add_argument("action", choices=["status", "path", "download"])
    sp.add_argument("name", nargs="?")
    sp.set_defaults(func=cmd_weights)

    sp = sub.add_parser("stats", help="precompute reference statistics (rFID / rFVD) of a dataset's originals")
    sp.add_argument("action", choices=["build"])
    sp.add_argument("dataset", help="registered dataset or a data spec such as imagenet:/data/val")
    sp.add_argument("--resolution", type=int)
    sp.add_argument("--extractor", default="inception")
    sp.add_argument("--device", default="cpu")
    sp.add_argument("--limit", type=positive_int)
    sp.add_argument("--force", action="store_true")
    sp.set_defaults(func=cmd_stats)

    add_check_parser(sub)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (TokbenchError, UnknownNameError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished items are cached and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
