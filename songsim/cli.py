"""``python -m songsim`` — batch work without the app.

    python -m songsim demo DIR                     make the demo catalogue in DIR
    python -m songsim build DIR [--spaces a,b] [--maps pca,umap,tsne] [--jobs N | --dask tcp://HOST:8786]
                                                   features, spaces, maps (incremental)
    python -m songsim train DIR [--spaces a,b] [--device cpu|cuda|mps] [--epochs N] [--dask ADDRESS]
                                                   train the learned spaces (maps: build, or on first view)
    python -m songsim query DIR (--track ID | --audio FILE) [--space NAME] [-k 5]
                            [--metric cosine|euclidean] [--exclude-artist] --json
    python -m songsim spaces [DIR] [--json]       every registered space (with its dimension in DIR)
    python -m songsim space import DIR --name NAME --vectors FILE [--ids FILE] [--metric cosine|euclidean]
                                                   your own vectors as a space of the catalogue
    python -m songsim space import DIR --name NAME --distances FILE   a tab-separated N×N distance matrix
    python -m songsim evaluate DIR [--spaces a,b] [--metric cosine|euclidean] [--folds K] [--json]
                                                   label-based scores of every space, with 95 % CIs
    python -m songsim study create DIR --name NAME --spaces a,b [--queries 20] [--k 5] [--seed S]
                            [--raters-per-pair 2] [--panel-size P] [--threshold 1] [--no-artist-filter]
                            [--query-ids id1,id2] [--upload FILE ...]    pool the spaces' top-k for a panel
    python -m songsim study show DIR --name NAME [--json] | add-space DIR --name NAME --space S | list DIR
    python -m songsim study invite DIR --name NAME --rater R [--url URL] | revoke DIR --name NAME --rater R
    python -m songsim study remove-rater DIR --name NAME --rater R [--keep-ratings]
    python -m songsim study access DIR --name NAME --invitation-only|--open
    python -m songsim rate DIR --study NAME --rater R --query Q --candidate C --broad 0|1|2
                            [--fine 0-100] [--comment TEXT]              append one rating to ratings.csv
    python -m songsim report DIR --study NAME [--json] [--csv DIR] [--html FILE]
    python -m songsim import DIR --audio AUDIO_DIR [--metadata CSV ...]
                            [--layout auto|folders|gtzan|flat|fma|deam|csv] [--replace] [--json]
                                                   write DIR/tracks.csv for a collection (audio stays put)
    python -m songsim bench index [--sizes 10000,100000] [--dim 64] [--queries 1000] [--json]
                                                   annoy vs exact search: build, latency, recall@k

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
from songsim.config import DEFAULT_MAP_METHODS, single_threaded_blas
from songsim.errors import SongsimError, os_error_message
from songsim.neighbours import HUBNESS_METHODS, METRICS


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


def _count_bar(desc: str, unit: str):
    """A tqdm bar driven by ``(done, total, message)`` callbacks; returns (callback, bar).

    Redraws at tqdm's own rate (``mininterval``), so a callback per file of a 100 k-file import
    costs little."""
    bar = tqdm(total=1, desc=desc, unit=unit, file=sys.stderr)

    def update(done: int, total: int, message: str) -> None:
        bar.total = total
        bar.set_postfix_str(message[:40], refresh=False)
        bar.update(done - bar.n)

    return update, bar


def _cmd_demo(args: argparse.Namespace) -> int:
    from songsim.demo.render import make_demo

    on_progress, bar = _count_bar("rendering demo", "clip")
    with bar:
        csv_path = make_demo(Path(args.dir), seed=args.seed, on_progress=on_progress, n_jobs=args.jobs, audio_format=args.format)
    print(csv_path)
    return 0


def _map_methods(text: str) -> tuple[str, ...]:
    """``--maps`` as a tuple of registered map methods ("" or "none": no maps)."""
    from songsim.maps import map_methods

    methods = tuple(m.strip() for m in text.split(",") if m.strip() and m.strip() != "none")
    unknown = [m for m in methods if m not in map_methods()]
    if unknown:
        raise SongsimError(f"Unknown map method {', '.join(unknown)}: use any of {', '.join(map_methods())}, comma-separated, or none.")
    return methods


def _cmd_build(args: argparse.Namespace) -> int:
    from songsim.build import build

    update, bar = _progress_bar(f"building (features on dask {args.dask})" if args.dask else "building")
    spaces = args.spaces.split(",") if args.spaces else None
    with bar:
        report = build(
            args.dir, spaces=spaces, map_methods=_map_methods(args.maps), seed=args.seed, n_jobs=args.jobs,
            on_progress=update, dask_address=args.dask,
        )
    _print_skipped(report)
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def _print_skipped(report) -> None:
    """One stderr line per space a build skipped, with the reason (labels the catalogue lacks,
    a space it needs, or unusable vectors of a broken plug-in)."""
    for name, reason in report.skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)


def _cmd_train(args: argparse.Namespace) -> int:
    from songsim.build import DEFAULT_SPACES, build
    from songsim.spaces.base import TrainingOptions, space_names
    from songsim.train import choose_device

    update, bar = _progress_bar(f"training on {choose_device(args.device)}")

    def on_epoch(space: str, epoch: int, max_epochs: int, train_loss: float, val_loss: float | None) -> None:
        shown = f"{val_loss:.3f}" if val_loss is not None else "–"
        update(f"train:{space}", epoch / max_epochs, f"{space}: epoch {epoch}/{max_epochs} loss {train_loss:.3f} val {shown}")

    trained_by_default = [name for name in space_names() if name not in DEFAULT_SPACES]
    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()] if args.spaces else trained_by_default
    options = TrainingOptions(device=args.device, max_epochs=args.epochs, on_epoch=on_epoch)
    with bar:
        report = build(
            args.dir, spaces=spaces, map_methods=(), seed=args.seed, n_jobs=args.jobs, on_progress=update, training=options,
            dask_address=args.dask,
        )
    _print_skipped(report)
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    from songsim.catalogue import load_catalogue
    from songsim.query import file_upload, neighbour_table, search, table_records

    catalogue = load_catalogue(args.dir)
    if args.track is not None:
        track = catalogue.track(args.track)
        query = {k: track.get(k) for k in ("track_id", "title", "artist", "album", "year", "genre", "emotion")}
        found = search(
            catalogue, args.space, track_id=args.track, k=args.k, metric=args.metric, exclude_artist=args.exclude_artist,
            hubness=args.hubness,
        )  # fmt: skip
    else:
        audio = Path(args.audio)
        upload = file_upload(catalogue, audio)  # searched where it lies: no copy is kept
        query = {"audio": str(audio), "fingerprint": upload.fingerprint}
        found = search(
            catalogue, args.space, upload=upload, k=args.k, metric=args.metric, exclude_artist=args.exclude_artist,
            hubness=args.hubness,
        )  # fmt: skip
    neighbours = [
        {"track_id": r["track_id"], "title": r.get("title"), "artist": r.get("artist"), "score": r["score"]}
        for r in table_records(neighbour_table(catalogue, found.neighbours))
    ]
    result = {"space": found.space, "metric": found.metric, "hubness": args.hubness, "query": query, "neighbours": neighbours}
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        for n in neighbours:
            print(f"{n['score']:+.3f}  {n['track_id']}  {n['artist'] or '?'} — {n['title'] or '?'}")
    return 0


def _cmd_space_import(args: argparse.Namespace) -> int:
    from songsim.spaces.store import import_distances, import_vectors

    if args.distances is not None:
        if args.ids is not None or args.metric is not None:
            raise SongsimError(
                "--ids and --metric are for --vectors: a distance matrix names its tracks in its first row and column, "
                "and is searched by its own distances (smaller = closer). Leave them out."
            )
        report = import_distances(args.dir, name=args.name, distances=args.distances, description=args.description or "")
    else:
        report = import_vectors(
            args.dir, name=args.name, vectors=args.vectors, ids=args.ids, metric=args.metric or "cosine",
            description=args.description or "",
        )  # fmt: skip
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.summary())
        if report.missing:
            shown = ", ".join(report.missing[:20]) + (f" … and {len(report.missing) - 20} more" if len(report.missing) > 20 else "")
            what = "no distances" if report.kind == "distances" else "no vector"
            print(f"{what} (left out of its searches, maps, figures and study pools): {shown}")
        print(f"its maps are fitted on first view, or now with `python -m songsim build {args.dir} --spaces {report.name}`")
    return 0


def _cmd_spaces(args: argparse.Namespace) -> int:
    from songsim.spaces.plugins import plugin_problems
    from songsim.stages import describe_spaces

    rows = describe_spaces(args.dir)
    for problem in plugin_problems():  # every other space is listed and works
        print(f"warning: plug-in not loaded: {problem.message}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            traits = [row["metric"], *(["trainable"] if row["trainable"] else []), *(["embeds uploads"] if row["embeds_uploads"] else [])]
            built = f", {row['dim']}-d built" if row.get("dim") else ""
            package = f" from {row['package']} {row['package_version']}" if row.get("package") else ""
            print(f"{row['name']:<16} {row['origin']:<9} {', '.join(traits)}{built}{package}")
            print(f"{'':<16} {row['description']}")
            needs = f"inputs {', '.join(row['inputs'])}" + (f" (optional: {', '.join(row['optional_inputs'])})" if row["optional_inputs"] else "")
            needs += f"; labels {', '.join(row['required_labels'])}" if row["required_labels"] else ""
            needs += f"; uses {', '.join(row['used_inputs'])} here" if row.get("used_inputs") and row["optional_inputs"] else ""
            print(f"{'':<16} {needs}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from songsim.evaluate import evaluate_catalogue, format_table
    from songsim.spaces.base import TrainingOptions

    update, bar = _progress_bar("evaluating")
    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()] if args.spaces else None

    def progress(stage: str, fraction: float, message: str) -> None:
        if stage.startswith("folds:"):  # one line per fold model: trained (how long) or reused
            tqdm.write(message, file=sys.stderr)
        update(stage, fraction, message)

    def on_epoch(space: str, epoch: int, max_epochs: int, train_loss: float, val_loss: float | None) -> None:
        shown = f"{val_loss:.3f}" if val_loss is not None else "–"
        update(f"train:{space}", epoch / max_epochs, f"{space}: epoch {epoch}/{max_epochs} loss {train_loss:.3f} val {shown}")

    with bar:
        result = evaluate_catalogue(
            args.dir, spaces=spaces, seed=args.seed, k=args.k, metric=args.metric, hubness=args.hubness, folds=args.folds,
            training=TrainingOptions(device=args.device, on_epoch=on_epoch), n_boot=args.resamples, on_progress=progress,
        )
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def _names(text: str | None) -> list[str] | None:
    """A comma-separated option as a list (``None`` when not given)."""
    return None if text is None else [s.strip() for s in text.split(",") if s.strip()]


def _format_study(study) -> str:
    """A readable summary of a :class:`~songsim.studies.study.Study`: settings, then one line per query."""
    lines = [
        f"study {study.name}: {len(study.spaces)} space(s) ({', '.join(study.spaces)}), k={study.k}, {study.metric}, "
        f"artist filter {'on' if study.artist_filter else 'off'}",
        f"{len(study.queries)} queries, {study.n_pairs} pairs to judge, each by {study.raters_per_pair} of a panel of "
        f"{study.panel_size}; relevant when mean BROAD ≥ {study.relevance_threshold:g}",
        f"raters: {', '.join(study.active_raters) or 'none yet'}"
        + (f" (removed: {', '.join(study.removed_raters)})" if study.removed_raters else "")
        + f"; {'invitation only' if study.invitation_only else 'open to self-registration'}",
    ]
    for query in study.queries:
        runs = ", ".join(f"{space} {len(run)}" for space, run in query.runs.items())
        lines.append(f"  {query.query_id:<28} pool {len(query.pool):>3}  ({runs})")
    return "\n".join(lines)


def _cmd_study_create(args: argparse.Namespace) -> int:
    from songsim.studies.study import create_study, study_path

    study = create_study(
        args.dir, args.name, _names(args.spaces), n_queries=args.queries, k=args.k, seed=args.seed,
        raters_per_pair=args.raters_per_pair, panel_size=args.panel_size, relevance_threshold=args.threshold,
        artist_filter=not args.no_artist_filter, require_play=not args.no_require_play, metric=args.metric,
        query_ids=_names(args.query_ids), upload_files=args.upload,
    )
    if args.invitation_only:
        from songsim.studies.study import set_invitation_only

        study = set_invitation_only(args.dir, study.name, True)
    print(_format_study(study))
    print(f"saved {study_path(args.dir, study.name)}", file=sys.stderr)
    return 0


def _cmd_study_show(args: argparse.Namespace) -> int:
    from songsim.studies.study import load_study, study_summary

    study = load_study(args.dir, args.name)
    print(json.dumps(study_summary(study), indent=2) if args.json else _format_study(study))
    return 0


def _cmd_study_add_space(args: argparse.Namespace) -> int:
    from songsim.studies.study import add_space

    study, n_new = add_space(args.dir, args.name, args.space)
    print(f"added {args.space} to study {study.name}: {n_new} new pair(s) to judge, {study.n_pairs} in all")
    return 0


def _cmd_study_invite(args: argparse.Namespace) -> int:
    from songsim.studies.identity import invite, rating_link

    name, token = invite(args.dir, args.name, args.rater)
    print(f"the link for {name} (shown once; an earlier link of theirs no longer works):", file=sys.stderr)
    print(rating_link(args.name, name, token, args.url))
    return 0


def _cmd_study_revoke(args: argparse.Namespace) -> int:
    from songsim.studies.identity import revoke

    print(f"{revoke(args.dir, args.name, args.rater)}'s link no longer works (study invite gives them a new one)")
    return 0


def _cmd_study_remove_rater(args: argparse.Namespace) -> int:
    from songsim.studies.identity import remove_rater

    name, moved, short = remove_rater(args.dir, args.name, args.rater, keep_ratings=args.keep_ratings)
    kept = "kept in the report" if args.keep_ratings else "left out of the report (ratings.csv keeps them)"
    print(f"removed {name} from study {args.name}: {moved} pair(s) went to the other raters; their ratings are {kept}")
    if short:
        print(f"warning: {short} pair(s) have fewer raters than asked: every remaining rater already has them", file=sys.stderr)
    return 0


def _cmd_study_access(args: argparse.Namespace) -> int:
    from songsim.studies.study import set_invitation_only

    study = set_invitation_only(args.dir, args.name, args.invitation_only)
    print(f"study {study.name}: {'invitation only' if study.invitation_only else 'open to self-registration'}")
    return 0


def _cmd_study_list(args: argparse.Namespace) -> int:
    from songsim.studies.study import list_studies

    names = list_studies(args.dir)
    print("\n".join(names) if names else f"no study in {args.dir} yet", file=sys.stdout if names else sys.stderr)
    return 0


def _cmd_rate(args: argparse.Namespace) -> int:
    from songsim.studies.ratings import Rating, append_rating

    rating = Rating(
        study=args.study, rater=args.rater, query_id=args.query, candidate_id=args.candidate,
        broad=args.broad, fine=args.fine, comment=args.comment,
    )
    print(json.dumps(append_rating(args.dir, rating).as_dict()))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from songsim.studies.render import format_text, write_html
    from songsim.studies.report import compute_report

    report = compute_report(args.dir, args.study)
    for problem in report.problems:  # torn or malformed rows of ratings.csv first, then the data's caveats
        print(f"warning: {problem}", file=sys.stderr)
    if args.csv:
        report.write_csv(Path(args.csv))
        print(f"wrote the CSV tables to {args.csv}", file=sys.stderr)
    if args.html:
        write_html(report, Path(args.html))
        print(f"wrote {args.html}", file=sys.stderr)
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_text(report))
    if report.unreadable_rows:
        print(
            f"error: {report.unreadable_rows} row(s) of {args.dir}/ratings.csv could not be read, so their ratings are "
            f"not in these figures: fix them as the warnings above say and run report again.",
            file=sys.stderr,
        )
        return 1
    return 0


def _add_study_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``study``, ``rate`` and ``report`` commands."""
    study = sub.add_parser("study", help="panel studies: create, show, add-space, list, invite, revoke, remove-rater, access")
    actions = study.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", help="pool the top-k of every space for a query set into a new study")
    create.add_argument("dir", help="a built catalogue folder (the study goes to DIR/studies/NAME.json)")
    create.add_argument("--name", required=True, help="study name: letters, digits, '_', '.', '-'")
    create.add_argument("--spaces", required=True, help="comma-separated built spaces to compare")
    create.add_argument("--queries", type=int, default=20, help="catalogue queries drawn stratified by genre (default 20; 0 with --upload: uploads only)")
    create.add_argument("-k", "--k", type=int, default=5, help="neighbours per space per query (default 5)")
    create.add_argument("--seed", type=int, default=0, help="seed of the query draw, the assignment and the shuffles")
    create.add_argument("--raters-per-pair", type=int, default=2, help="raters judging each pair (default 2)")
    create.add_argument("--panel-size", type=int, default=None, help="expected raters (default: raters per pair, so everyone rates everything)")
    create.add_argument("--threshold", type=float, default=1.0, help="binary relevance for MAP and P@k: mean BROAD ≥ threshold (default 1)")
    create.add_argument(
        "--metric", choices=("own", "cosine", "euclidean"), default="own",
        help="similarity of every run (default: each space's own: euclidean for wavenet, ae-2d, spectrogram-l2)",
    )
    create.add_argument("--no-artist-filter", action="store_true", help="keep the query's artist among the candidates")
    create.add_argument("--no-require-play", action="store_true", help="let raters rate a candidate before playing it")
    create.add_argument(
        "--invitation-only", action="store_true",
        help="raters sign in only with a link from `study invite` (default: a new name registers itself)",
    )  # fmt: skip
    create.add_argument("--query-ids", default=None, help="comma-separated hand-picked track ids (instead of the draw)")
    create.add_argument("--upload", nargs="+", action="extend", default=None, metavar="FILE", help="audio files added as queries")
    create.set_defaults(run=_cmd_study_create)

    show = actions.add_parser("show", help="a study's settings, runs and pools")
    show.add_argument("dir", help="the catalogue folder")
    show.add_argument("--name", required=True)
    show.add_argument("--json", action="store_true", help='print {"name", "k", "spaces", "queries": [{"query_id", "runs", "pool"}]}')
    show.set_defaults(run=_cmd_study_show)

    add = actions.add_parser("add-space", help="add a space to a study: only its new candidates need judging")
    add.add_argument("dir", help="the catalogue folder")
    add.add_argument("--name", required=True)
    add.add_argument("--space", required=True, help="a built space not yet in the study")
    add.set_defaults(run=_cmd_study_add_space)

    listing = actions.add_parser("list", help="the studies of a catalogue")
    listing.add_argument("dir", help="the catalogue folder")
    listing.set_defaults(run=_cmd_study_list)

    invite = actions.add_parser("invite", help="print a rater's sign-in link (a new secret token; an earlier one stops working)")
    invite.add_argument("dir", help="the catalogue folder")
    invite.add_argument("--name", required=True)
    invite.add_argument("--rater", required=True, help="the rater's name or id")
    invite.add_argument("--url", default="http://localhost:8501", help="the app's address as raters reach it (default http://localhost:8501)")
    invite.set_defaults(run=_cmd_study_invite)

    revoke = actions.add_parser("revoke", help="stop a rater's link from working (they keep their ratings and share)")
    revoke.add_argument("dir", help="the catalogue folder")
    revoke.add_argument("--name", required=True)
    revoke.add_argument("--rater", required=True)
    revoke.set_defaults(run=_cmd_study_revoke)

    remove = actions.add_parser("remove-rater", help="remove a rater for good: their pairs go to the other raters")
    remove.add_argument("dir", help="the catalogue folder")
    remove.add_argument("--name", required=True)
    remove.add_argument("--rater", required=True)
    remove.add_argument(
        "--keep-ratings", action="store_true",
        help="keep their ratings in the report and hand over only their unrated pairs (default: leave their ratings "
        "out of the report and hand over all their pairs)",
    )  # fmt: skip
    remove.set_defaults(run=_cmd_study_remove_rater)

    access = actions.add_parser("access", help="make a study invitation-only or open to self-registration")
    access.add_argument("dir", help="the catalogue folder")
    access.add_argument("--name", required=True)
    which = access.add_mutually_exclusive_group(required=True)
    which.add_argument("--invitation-only", dest="invitation_only", action="store_true")
    which.add_argument("--open", dest="invitation_only", action="store_false")
    access.set_defaults(run=_cmd_study_access)

    rate = sub.add_parser(
        "rate",
        help="append one rating to DIR/ratings.csv (validated, locked): the owner's scripted path on the server, so "
        "no rater token is asked (e.g. to enter paper forms)",
    )
    rate.add_argument("dir", help="the catalogue folder")
    rate.add_argument("--study", required=True)
    rate.add_argument("--rater", required=True)
    rate.add_argument("--query", required=True, help="query id")
    rate.add_argument("--candidate", required=True, help="candidate track id (from the query's pool)")
    rate.add_argument("--broad", type=int, required=True, help="0 not similar, 1 somewhat similar, 2 very similar")
    rate.add_argument("--fine", type=float, default=None, help="FINE score 0–100 (optional)")
    rate.add_argument("--comment", default="", help="free text (optional)")
    rate.set_defaults(run=_cmd_rate)

    report = sub.add_parser("report", help="per-space NDCG/MAP/P@k with CIs, significance and rater agreement")
    report.add_argument("dir", help="the catalogue folder")
    report.add_argument("--study", required=True)
    report.add_argument("--json", action="store_true", help="print JSON")
    report.add_argument("--csv", default=None, metavar="DIR", help="also write the tables as CSV files into DIR")
    report.add_argument("--html", default=None, metavar="FILE", help="also write a self-contained HTML report")
    report.set_defaults(run=_cmd_report)


def _cmd_import(args: argparse.Namespace) -> int:
    from songsim.importers import import_collection

    on_progress, bar = _count_bar("checking audio", "file")
    with bar:
        report = import_collection(
            args.dir, args.audio, metadata=args.metadata, layout=args.layout, replace=args.replace, on_progress=on_progress
        )
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.format())
    return 0


def _cmd_bench_index(args: argparse.Namespace) -> int:
    from songsim.benchmarks import bench_index, format_index_table

    annoy = {name: value for name, value in (("n_trees", args.n_trees), ("search_k", args.search_k)) if value is not None}
    update, bar = _progress_bar("benchmarking")
    with bar:
        result = bench_index(
            args.sizes, dim=args.dim, n_queries=args.queries, k=args.k, metric=args.metric, seed=args.seed,
            workdir=args.workdir, on_progress=update, **annoy,
        )
    print(json.dumps(result, indent=2) if args.json else format_index_table(result))
    return 0


def _sizes(text: str) -> list[int]:
    """``--sizes 10000,100000`` as a list of positive ints (an argparse type)."""
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of row counts, e.g. 10000,100000") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one positive row count")
    return sizes


def _add_import_and_bench_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``import`` and ``bench`` commands (their modules are imported only when they run)."""
    imports = sub.add_parser("import", help="write DIR/tracks.csv for a music collection (GTZAN, FMA, DEAM, folders, CSV)")
    imports.add_argument("dir", help="the catalogue folder to write tracks.csv into (created if missing)")
    imports.add_argument("--audio", required=True, help="the folder holding the audio (searched recursively; never moved)")
    imports.add_argument(
        "--metadata", action="append", default=[], metavar="CSV",
        help="labels: FMA tracks.csv, DEAM annotations, or any CSV keyed by track id or file name (repeatable)",
    )
    imports.add_argument(
        "--layout", default="auto",
        help="how the collection is organised: auto (default: detect), folders, gtzan, flat, fma, deam or csv",
    )
    imports.add_argument("--replace", action="store_true", help="overwrite an existing DIR/tracks.csv")
    imports.add_argument("--json", action="store_true", help="print the report as JSON")
    imports.set_defaults(run=_cmd_import)

    bench = sub.add_parser("bench", help="benchmarks that print JSON figures")
    kinds = bench.add_subparsers(dest="benchmark", required=True)
    index = kinds.add_parser("index", help="annoy vs exact top-k on synthetic embeddings: build time, latency, recall@k")
    index.add_argument("--sizes", type=_sizes, default=[10_000, 100_000], help="comma-separated row counts (default 10000,100000)")
    index.add_argument("--dim", type=int, default=64)
    index.add_argument("--queries", type=int, default=1000, help="query rows per size (default 1000)")
    index.add_argument("-k", type=int, default=5)
    index.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    index.add_argument("--n-trees", type=int, default=None, help="annoy trees (default: songsim's)")
    index.add_argument("--search-k", type=int, default=None, help="annoy nodes inspected per query (default: songsim's)")
    index.add_argument("--seed", type=int, default=0)
    index.add_argument("--workdir", default=None, help="folder for the temporary annoy file (~0.9 GB at 1 M rows)")
    index.add_argument("--json", action="store_true", help="print JSON")
    index.set_defaults(run=_cmd_bench_index)


def _add_dask_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dask", default=None, metavar="ADDRESS",
        help="extract features on the Dask cluster whose scheduler is at ADDRESS, e.g. tcp://HOST:8786 "
        "(audio mounted at the same path on every worker; see README)",
    )


def _add_hubness_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hubness", choices=HUBNESS_METHODS, default="none",
        help="rescale distances to reduce hubs: mp (mutual proximity, empirical), mp-gauss (Gaussian), ls (local scaling)",
    )  # fmt: skip


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
    build.add_argument(
        "--maps", default=",".join(DEFAULT_MAP_METHODS), metavar="M1,M2",
        help=f"map methods fitted for every space (default: {','.join(DEFAULT_MAP_METHODS)}; 'none' for no maps)",
    )
    _add_dask_argument(build)
    build.set_defaults(run=_cmd_build)

    train = sub.add_parser("train", help="train the learned spaces (CNNs, autoencoders, triplet); maps come with build or on first view")
    train.add_argument("dir", help="catalogue folder holding tracks.csv")
    train.add_argument("--spaces", default=None, help="comma-separated space names (default: every learned and literature space)")
    train.add_argument("--device", default=None, help="cpu, cuda or mps (default: cuda, else mps, else cpu)")
    train.add_argument("--epochs", type=int, default=None, help="maximum epochs of every model (default: each model's own)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--jobs", type=int, default=None, help="processes for feature extraction (default: every core)")
    _add_dask_argument(train)
    train.set_defaults(run=_cmd_train)

    query = sub.add_parser("query", help="top-k neighbours of a catalogue track or an audio file")
    query.add_argument("dir", help="a built catalogue folder")
    source = query.add_mutually_exclusive_group(required=True)
    source.add_argument("--track", help="track_id of a catalogue song")
    source.add_argument("--audio", help="path of a WAV/FLAC/OGG/MP3 file")
    query.add_argument("--space", default="handcrafted")
    query.add_argument("-k", type=int, default=5)
    query.add_argument(
        "--metric", choices=METRICS, default=None,
        help="similarity (default: the space's own: euclidean for wavenet, ae-2d, spectrogram-l2)",
    )
    query.add_argument("--exclude-artist", action="store_true", help="leave out the query's artist (MIREX artist filter)")
    _add_hubness_argument(query)
    query.add_argument("--json", action="store_true", help="print JSON")
    query.set_defaults(run=_cmd_query)

    evaluate = sub.add_parser("evaluate", help="label-based figures (genre P@k, nDCG, MAP, clustering, hubness) per built space")
    evaluate.add_argument("dir", help="a built catalogue folder")
    evaluate.add_argument("--spaces", default=None, help="comma-separated space names (default: every built space)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the ranking protocol's draws, the clusterings and the bootstrap")
    evaluate.add_argument("-k", type=int, default=5, help="neighbours per query for P@k, year distance and hubness")
    evaluate.add_argument(
        "--metric", choices=METRICS, default=None,
        help="similarity of every figure (default: each space's own: euclidean for wavenet, ae-2d, spectrogram-l2)",
    )
    _add_hubness_argument(evaluate)
    evaluate.add_argument(
        "--folds", type=int, default=None, metavar="K",
        help="score every space that holds out test rows (and every space built on one) with K fold models, so every "
        "song is a query (trained once, then reused; K <= the smallest genre's song count)",
    )
    evaluate.add_argument("--device", default=None, help="where fold models train: cpu, cuda or mps (default: cuda, else mps, else cpu)")
    evaluate.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of every figure's 95 %% CI")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(run=_cmd_evaluate)

    space = sub.add_parser("space", help="spaces of one catalogue: import your own vectors")
    space_sub = space.add_subparsers(dest="space_command", required=True)
    imported = space_sub.add_parser(
        "import", help="import one vector per track (.npy + --ids, .npz, .csv, .parquet, .tsv + --ids) or a distance matrix (.tsv)"
    )
    imported.add_argument("dir", help="a catalogue folder holding tracks.csv")
    imported.add_argument("--name", required=True, help="the space's name (lower-case letters, digits, _ . -)")
    source = imported.add_mutually_exclusive_group(required=True)
    source.add_argument("--vectors", default=None, help="the vectors file")
    source.add_argument(
        "--distances", default=None,
        help="a tab-separated N×N distance matrix (.tsv/.txt; first row and column name the tracks; smaller = closer)",
    )  # fmt: skip
    imported.add_argument("--ids", default=None, help="track ids (or audio paths), one per line: for .npy, and the Projector's metadata.tsv")
    imported.add_argument("--metric", choices=METRICS, default=None, help="the similarity the vectors are made for (default cosine; not with --distances)")
    imported.add_argument("--description", default=None, help="one line saying what the vectors are")
    imported.add_argument("--json", action="store_true", help="print JSON")
    imported.set_defaults(run=_cmd_space_import)

    spaces = sub.add_parser("spaces", help="every registered space: what it is, its inputs, labels, metric, origin")
    spaces.add_argument("dir", nargs="?", default="", help="a catalogue folder: also give each space's dimension there when built")
    spaces.add_argument("--json", action="store_true", help="print JSON")
    spaces.set_defaults(run=_cmd_spaces)
    _add_study_parsers(sub)
    _add_import_and_bench_parsers(sub)
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
    except OSError as exc:  # a folder that cannot be written, a file that exists, a full disk
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 2
