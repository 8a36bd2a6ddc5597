"""``python -m songsim`` — batch work without the app.

    python -m songsim demo DIR                     make the demo catalogue in DIR
    python -m songsim build DIR [--spaces a,b]     features, spaces, maps (incremental)
    python -m songsim train DIR [--spaces a,b] [--device cpu|cuda|mps] [--epochs N]
                                                   train the learned spaces (maps: build, or on first view)
    python -m songsim query DIR (--track ID | --audio FILE) [--space NAME] [-k 5]
                            [--metric cosine|euclidean] [--exclude-artist] --json
    python -m songsim evaluate DIR [--spaces a,b] [--json]   label-based scores of every space

Errors (a :class:`~songsim.errors.SongsimError`) go to stderr with exit status 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from songsim import config
from songsim.config import single_threaded_blas
from songsim.errors import SongsimError


def _progress_bar(desc: str):
    """A tqdm bar driven by ``(stage, fraction, message)`` callbacks; returns (callback, bar)."""
    bar = tqdm(total=100, desc=desc, unit="%", file=sys.stderr, leave=True, bar_format="{desc} {bar} {n:.0f}% {postfix}")

    shown = {"percent": -1, "stage": ""}

    def update(stage: str, fraction: float, message: str) -> None:
        percent = round(100 * fraction)
        if percent == shown["percent"] and stage == shown["stage"]:
            return
        shown.update(percent=percent, stage=stage)
        bar.n = percent
        bar.set_postfix_str(message[:60], refresh=False)
        bar.refresh()

    return update, bar


def _cmd_demo(args: argparse.Namespace) -> int:
    from songsim.demo import make_demo

    with tqdm(total=1, desc="rendering demo", unit="clip", file=sys.stderr) as bar:

        def on_progress(done: int, total: int, message: str) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(message[:40])
            bar.refresh()

        csv_path = make_demo(Path(args.dir), seed=args.seed, on_progress=on_progress, n_jobs=args.jobs, audio_format=args.format)
    print(csv_path)
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from songsim.build import build

    update, bar = _progress_bar("building")
    spaces = args.spaces.split(",") if args.spaces else None
    with bar:
        report = build(args.dir, spaces=spaces, seed=args.seed, n_jobs=args.jobs, on_progress=update)
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from songsim.build import build
    from songsim.learned import LEARNED_SPACES, TrainingOptions
    from songsim.train import choose_device

    update, bar = _progress_bar(f"training on {choose_device(args.device)}")

    def on_epoch(space: str, epoch: int, max_epochs: int, train_loss: float, val_loss: float | None) -> None:
        shown = f"{val_loss:.3f}" if val_loss is not None else "–"
        update(f"train:{space}", epoch / max_epochs, f"{space}: epoch {epoch}/{max_epochs} loss {train_loss:.3f} val {shown}")

    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()] if args.spaces else list(LEARNED_SPACES)
    options = TrainingOptions(device=args.device, max_epochs=args.epochs, on_epoch=on_epoch)
    with bar:
        report = build(
            args.dir, spaces=spaces, map_methods=(), seed=args.seed, n_jobs=args.jobs, on_progress=update, training=options
        )
    for name, reason in report.skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    from songsim.build import load_built_space, open_index
    from songsim.catalogue import load_catalogue
    from songsim.query import embed_upload, neighbour_table, neighbours_of, store_upload, table_records

    catalogue = load_catalogue(args.dir)
    space = load_built_space(catalogue, args.space)
    index = open_index(catalogue, space, metric=args.metric)
    if args.track is not None:
        row = catalogue.row_of(args.track)
        vector, query = space.vectors_[row], catalogue.track(args.track)
        query = {k: query.get(k) for k in ("track_id", "title", "artist", "album", "year", "genre", "emotion")}
    else:
        audio = Path(args.audio)
        if not audio.is_file():
            raise SongsimError(f"Audio file {audio} does not exist: give the path of a WAV, FLAC, OGG or MP3 file.")
        upload = store_upload(catalogue, audio.read_bytes(), audio.name)
        row = upload.catalogue_row
        vector = embed_upload(catalogue, space, upload, load_space=lambda name: load_built_space(catalogue, name))
        query = {"audio": str(audio), "fingerprint": upload.fingerprint}
    found = neighbours_of(catalogue, index, vector=vector, query_row=row, k=args.k, exclude_artist=args.exclude_artist)
    table = neighbour_table(catalogue, found)
    neighbours = [
        {"track_id": r["track_id"], "title": r.get("title"), "artist": r.get("artist"), "score": r["score"]}
        for r in table_records(table)
    ]
    result = {"space": args.space, "metric": args.metric, "query": query, "neighbours": neighbours}
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        for n in neighbours:
            print(f"{n['score']:+.3f}  {n['track_id']}  {n['artist'] or '?'} — {n['title'] or '?'}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from songsim.evaluate import evaluate_catalogue, format_table

    update, bar = _progress_bar("evaluating")
    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()] if args.spaces else None
    with bar:
        result = evaluate_catalogue(args.dir, spaces=spaces, seed=args.seed, k=args.k, on_progress=update)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m songsim", description="Listening-based evaluation of song similarity.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="make the embedded demo catalogue (deterministic, no downloads)")
    demo.add_argument("dir", nargs="?", default=None, help=f"target folder (default: {config.default_demo_dir()})")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--format", choices=("flac", "ogg"), default="flac",
        help="flac (lossless, fast to encode, ~210 MB) or ogg (Vorbis, ~45 MB, ~30 s slower on 2 cores)",
    )
    demo.add_argument("--jobs", type=int, default=None, help="processes (default: every core)")
    demo.set_defaults(run=_cmd_demo)

    build = sub.add_parser("build", help="features, spaces, maps for a catalogue (incremental)")
    build.add_argument("dir", help="catalogue folder holding tracks.csv")
    build.add_argument("--spaces", default=None, help="comma-separated space names (default: all)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--jobs", type=int, default=None, help="processes for feature extraction (default: every core)")
    build.set_defaults(run=_cmd_build)

    train = sub.add_parser("train", help="train the learned spaces (CNNs, autoencoders, triplet); maps come with build or on first view")
    train.add_argument("dir", help="catalogue folder holding tracks.csv")
    train.add_argument("--spaces", default=None, help="comma-separated space names (default: every learned space)")
    train.add_argument("--device", default=None, help="cpu, cuda or mps (default: cuda, else mps, else cpu)")
    train.add_argument("--epochs", type=int, default=None, help="maximum epochs of every model (default: each model's own)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--jobs", type=int, default=None, help="processes for feature extraction (default: every core)")
    train.set_defaults(run=_cmd_train)

    query = sub.add_parser("query", help="top-k neighbours of a catalogue track or an audio file")
    query.add_argument("dir", help="a built catalogue folder")
    source = query.add_mutually_exclusive_group(required=True)
    source.add_argument("--track", help="track_id of a catalogue song")
    source.add_argument("--audio", help="path of a WAV/FLAC/OGG/MP3 file")
    query.add_argument("--space", default="handcrafted")
    query.add_argument("-k", type=int, default=5)
    query.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    query.add_argument("--exclude-artist", action="store_true", help="leave out the query's artist (MIREX artist filter)")
    query.add_argument("--json", action="store_true", help="print JSON")
    query.set_defaults(run=_cmd_query)

    evaluate = sub.add_parser("evaluate", help="label-based figures (genre P@k, nDCG, MAP, clustering, hubness) per built space")
    evaluate.add_argument("dir", help="a built catalogue folder")
    evaluate.add_argument("--spaces", default=None, help="comma-separated space names (default: every built space)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the ranking protocol's draws and the clusterings")
    evaluate.add_argument("-k", type=int, default=5, help="neighbours per query for P@k, year distance and hubness")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(run=_cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if getattr(args, "dir", "") is None:
        args.dir = str(config.default_demo_dir())
    try:
        with single_threaded_blas():
            return args.run(args)
    except SongsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
