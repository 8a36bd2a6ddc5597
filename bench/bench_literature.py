"""The literature's spaces (issue 6): training seconds and every label-based figure per space.

    python -m bench.bench_literature [--dir DIR] [--device cpu] [--epochs N] [--seed 0]
                                     [--spaces spectrogram-pca,wavenet,...]
                                     [--wavenet-variants pairwise:euclidean,listwise:euclidean]

``DIR`` is a catalogue (default: the demo in ``songsim.config.default_demo_dir()``; make it
with ``python -m songsim demo DIR``). Every space is fitted in memory — stored fits in ``DIR``
are neither used nor changed; cached features are reused (mel and chroma extraction are timed
separately). Figures come from :func:`songsim.evaluate.evaluate_space`; learned spaces are
queried on their held-out test rows only, so ``handcrafted`` and ``random`` are also scored on
those rows (``*@test``) for a paired comparison. Prints JSON:

- ``train_s``: wall seconds of ``fit`` per space (and per extra wavenet variant); in
  ``conditions`` the CPU seconds of this process (with one torch thread, about the wall time
  on one idle core, whatever the machine's load), the torch threads and the 1-minute load
  average they ran under;
- ``figures``: per space the cosine figures; ``figures_euclidean`` the same with
  ``metric="euclidean"`` (the wavenet comparison, and the L2 variant of the spectrogram);
- ``chroma_lstm_reductions``: the figures of the mean / max / last reductions, and the one
  the space kept;
- ``ali``: the loss trajectories (first and last epochs) and the convergence verdict;
- ``wavenet_variants``: genre P@5 and overlap@5 of each (loss, similarity) variant, by
  retrieval metric.

Target (issue 6): each space trains in ≤ 180 s on 2 CPU cores for the demo catalogue.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from bench.training_args import training_parser
from songsim.catalogue import load_catalogue
from songsim.evaluate import evaluate_space
from songsim.features import extract_features
from songsim.spaces.base import TrainingOptions, space_names, space_type
from songsim.spaces.inputs import space_inputs
from songsim.spaces.literature import ChromaLSTMSpace, WaveNetSpace, WaveNetSpaceConfig
from songsim.spaces.store import features_cache_dir
from songsim.train import choose_device

BASELINES = ("handcrafted", "random")
TARGET_TRAIN_S = 180
SUMMARY = ("genre_p@5", "genre_p@5_artist_filtered", "ndcg@6", "map", "pairwise_acc", "overlap@3", "overlap@5",
           "overlap@10", "edit_distance@3", "edit_distance@5", "edit_distance@10", "v_measure", "hubness_skew")  # fmt: skip


def _summary(figures: dict) -> dict:
    """The headline figures and the query count of one evaluate_space result."""
    out = {f: figures.get(f) for f in SUMMARY}
    out["n_queries"] = figures.get("n_queries", {}).get("genre_p@5")
    return out


def _conditions() -> dict:
    return {"torch_threads": torch.get_num_threads(), "load_average_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = training_parser()
    parser.add_argument("--spaces", default=",".join(space_names(family="literature")))
    parser.add_argument(
        "--wavenet-variants", default="", help="extra wavenet trainings, e.g. pairwise:cosine,listwise:euclidean (loss:similarity)"
    )
    args = parser.parse_args()

    catalogue = load_catalogue(Path(args.dir))
    fingerprints = catalogue.audio_fingerprints()
    paths = catalogue.tracks["path"].map(Path).tolist()
    labels = {c: catalogue.labels(c) for c in catalogue.tracks.columns}
    feature_s = {}
    for kind in ("mel", "chroma"):
        started = time.perf_counter()
        extract_features(paths, fingerprints, kind=kind, cache_dir=features_cache_dir(catalogue))
        feature_s[kind] = round(time.perf_counter() - started, 2)

    options = TrainingOptions(device=args.device, max_epochs=args.epochs, catalogue_fingerprint=catalogue.fingerprint(fingerprints))
    fitted, train_s, conditions, figures, euclidean = {}, {}, {}, {}, {}
    inputs_of = {}
    for name in (*BASELINES, *[s for s in args.spaces.split(",") if s]):
        cls = space_type(name)
        if any(not catalogue.has_labels(c) for c in cls.required_labels):
            figures[name] = {"skipped": f"no {', '.join(cls.required_labels)} labels"}
            continue
        inputs = inputs_of[name] = space_inputs(
            cls, catalogue, paths=paths, fingerprints=fingerprints, keys=catalogue.track_ids, dependency_vectors=None
        )
        space = cls()
        started, cpu_started = time.perf_counter(), time.process_time()
        if cls.trainable:
            space.fit(inputs, labels=labels, seed=args.seed, training=options)
        else:
            space.fit(inputs, labels=labels, seed=args.seed)
        train_s[name] = round(time.perf_counter() - started, 2)
        conditions[name] = {**_conditions(), "cpu_s": round(time.process_time() - cpu_started, 2)}
        fitted[name] = space
        figures[name] = _summary(evaluate_space(catalogue, space, seed=args.seed, metric="cosine"))
        euclidean[name] = _summary(evaluate_space(catalogue, space, seed=args.seed, metric="euclidean"))

    test_rows = next((s.test_rows_ for s in fitted.values() if hasattr(s, "test_rows_")), None)
    if test_rows is not None:
        for name in (*BASELINES, "spectrogram-pca", "spectrogram-l2"):
            if name in fitted:
                same_queries = SimpleNamespace(name=name, vectors_=fitted[name].vectors_, test_rows_=test_rows)
                figures[f"{name}@test"] = _summary(evaluate_space(catalogue, same_queries, seed=args.seed, metric="cosine"))
                euclidean[f"{name}@test"] = _summary(evaluate_space(catalogue, same_queries, seed=args.seed, metric="euclidean"))

    result: dict = {
        "catalogue": str(catalogue.root),
        "n_tracks": len(catalogue),
        "device": str(choose_device(args.device)),
        "feature_s": feature_s,
        "train_s": train_s,
        "conditions": conditions,
        "target_train_s_per_space": TARGET_TRAIN_S,
        "within_target": {n: s <= TARGET_TRAIN_S for n, s in train_s.items() if n not in BASELINES},
        "figures": figures,
        "figures_euclidean": euclidean,
    }
    for name in ("wavenet", "chroma-lstm", "ali"):
        if name in fitted:
            checkpoint = fitted[name].checkpoint()
            result.setdefault("test_metrics", {})[name] = checkpoint.test_metrics
            history = checkpoint.history
            result.setdefault("epochs", {})[name] = {"run": len(history.train_loss), "best": history.best_epoch, "stopped_early": history.stopped_early}

    if "chroma-lstm" in fitted:
        lstm: ChromaLSTMSpace = fitted["chroma-lstm"]
        reductions = lstm.embed_all(inputs_of["chroma-lstm"])
        result["chroma_lstm_reductions"] = {
            "kept": lstm.reduction_,
            "val_genre_p@5": lstm.reduction_scores_,
            "test": {
                r: _summary(evaluate_space(catalogue, SimpleNamespace(name=r, vectors_=v, test_rows_=lstm.test_rows_), seed=args.seed, metric="cosine"))
                for r, v in reductions.items()
            },
        }
    if "ali" in fitted:
        history = fitted["ali"].checkpoint().history
        result["ali"] = {
            "generator_loss_first_last": [round(history.train_loss[0], 4), round(history.train_loss[-1], 4)],
            **{f"{k}_first_last": [round(v[0], 4), round(v[-1], 4)] for k, v in history.extra_losses.items()},
            "converged": fitted["ali"].checkpoint().test_metrics["converged"],
        }

    variants = {}
    for variant in [v for v in args.wavenet_variants.split(",") if v]:
        loss, similarity = variant.split(":")
        space = WaveNetSpace(config=WaveNetSpaceConfig(loss=loss, similarity=similarity))
        started, cpu_started = time.perf_counter(), time.process_time()
        space.fit(inputs_of.get("wavenet") or space_inputs(
            WaveNetSpace, catalogue, paths=paths, fingerprints=fingerprints, keys=catalogue.track_ids, dependency_vectors=None
        ), labels=labels, seed=args.seed, training=options)  # fmt: skip
        variants[variant] = {
            "train_s": round(time.perf_counter() - started, 2),
            "cpu_s": round(time.process_time() - cpu_started, 2),
            **_conditions(),
            "epochs": len(space.checkpoint().history.train_loss),
            **{
                metric: {f: evaluate_space(catalogue, space, seed=args.seed, metric=metric).get(f) for f in ("genre_p@5", "overlap@5", "ndcg@6")}
                for metric in ("cosine", "euclidean")
            },
        }
    if variants:
        result["wavenet_variants"] = variants
    print(json.dumps(result, indent=2, default=lambda v: float(v) if isinstance(v, np.floating) else str(v)))


if __name__ == "__main__":
    main()
