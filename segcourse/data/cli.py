"""``python -m segcourse data build [NAME ...]``: write the synthetic datasets to disk.

Examples::

    python -m segcourse data build                       # every dataset, every split, this mode's sizes
    python -m segcourse data build cells --split train --size 128 --count 50
    python -m segcourse data build shapes --out /tmp/ds --seed 3
    python -m segcourse data prepare oxford_pet --source ~/Downloads   # a real dataset (segcourse.data.recipes)
    python -m segcourse data check-urls                  # maintainers: does every recipe URL still answer?

Each split lands in ``DIR/NAME/<split>-<H>x<W>-n<count>-seed<seed>/`` (``DIR`` = ``--out`` or
:func:`segcourse.data.paths.data_root`); see :mod:`segcourse.data.build` for the layout. A split that
is already complete is reused unless ``--force`` is given. The same arguments give byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .synthetic import GENERATORS, SPLIT_OFFSETS

    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    build = sub.add_parser("build", help="generate synthetic datasets into the standard folder format")
    build.add_argument("names", nargs="*", metavar="NAME",
                       help=f"datasets to build (default: all of {', '.join(GENERATORS)})")
    build.add_argument("--out", type=Path, default=None,
                       help="data root to write into (default: $SEGCOURSE_DATA, the checkout's datasets/, "
                            "or ~/.cache/segcourse/datasets)")
    build.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    build.add_argument("--size", type=int, default=None, help="image side in pixels (default: the mode's)")
    build.add_argument("--count", type=int, default=None, help="samples per split (default: the mode's)")
    build.add_argument("--split", action="append", choices=list(SPLIT_OFFSETS), default=None,
                       help="split to build; repeat for several (default: all)")
    build.add_argument("--force", action="store_true", help="rebuild even when a complete copy exists")
    build.add_argument("--no-progress", action="store_true", help="no progress bars")
    prepare = sub.add_parser("prepare", add_help=False,
                             help="download/convert a real dataset (see: data prepare --help)")
    prepare.add_argument("recipe_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    check = sub.add_parser("check-urls", add_help=False,
                           help="ask every real-dataset URL whether it still serves its file (needs the internet)")
    check.add_argument("recipe_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``data`` arguments; everything after ``prepare`` goes to the recipes verbatim (``--help`` too)."""
    if argv and argv[0] in ("prepare", "check-urls"):
        return argparse.Namespace(action=argv[0], recipe_args=list(argv[1:]))
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from .build import dataset_dir, ensure_dataset, is_complete
    from .synthetic import GENERATORS, SPLIT_OFFSETS

    action = getattr(args, "action", None)
    if action == "prepare":
        from .recipes import main as recipes_main  # imported only here: converters and downloads are optional

        return int(recipes_main(args.recipe_args) or 0)
    if action == "check-urls":
        from .recipes import check_urls_main

        return int(check_urls_main(args.recipe_args) or 0)
    if action != "build":
        print("usage: python -m segcourse data build [NAME ...] [--out DIR] [--seed N] [--size N] [--count N] "
              "[--split S] [--force]\n       python -m segcourse data prepare RECIPE [--source S] [--root R] ...",
              file=sys.stderr)
        return 2
    names = args.names or list(GENERATORS)
    unknown = [n for n in names if n not in GENERATORS]
    if unknown:
        print(f"error: unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(GENERATORS)}", file=sys.stderr)
        return 2
    splits = args.split or list(SPLIT_OFFSETS)
    try:
        for name in names:
            for split in splits:
                folder = dataset_dir(name, split, args.count, args.size, args.seed, args.out)
                reused = not args.force and is_complete(folder)
                folder = ensure_dataset(name, split, args.count, args.size, args.seed, root=args.out,
                                        progress=not args.no_progress, force=args.force)
                print(f"{'reused ' if reused else 'built  '} {name}/{split}: {folder}")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
