"""Training the learned spaces: seconds per model and label-based P@5 against the baselines.

    python -m bench.bench_train [--dir DIR] [--device cpu] [--epochs N] [--seed 0]
                                [--emotion-aux-weight 0.5] [--measure-sample 24]

``DIR`` is a catalogue (default: the demo in ``songsim.config.default_demo_dir()``; make it
with ``python -m songsim demo DIR``). Every space is fitted in memory in dependency order —
stored fits in ``DIR`` are neither used nor changed; cached features are reused (the mel
extraction is timed separately). Figures come from :func:`songsim.evaluate.evaluate_space`:
cosine top-5, query excluded, supervised spaces (those with ``test_rows_``) queried on their
held-out test rows only. ``handcrafted`` and ``random`` are also scored on those same test
rows (``*@test``), for a paired comparison. Prints JSON.

Targets (issue 3): every learned space beats ``handcrafted`` and ``random`` on genre P@5;
``fusion-ae`` ≥ its best single input on mean(genre P@5, emotion P@5); all training ≤ 300 s
on 2 CPU cores.
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
from songsim.audio import load_clip
from songsim.catalogue import SPOTIFY_FEATURES, load_catalogue
from songsim.evaluate import evaluate_space
from songsim.features import extract_features
from songsim.measure import MEASURED_FEATURES, measure_metadata
from songsim.spaces.base import SPACE_INPUT_PREFIX, TrainingOptions, space_names, space_type
from songsim.spaces.inputs import space_inputs
from songsim.spaces.learned import CNNSpaceConfig
from songsim.spaces.store import build_order, features_cache_dir, used_inputs
from songsim.train import choose_device

LEARNED_SPACES = space_names(family="learned")
BASELINES = ("handcrafted", "random")
FUSED = ("genre-cnn", "emotion-cnn", "metadata")
TARGET_TRAIN_S = 300


def _measurement_agreement(catalogue, sample: int) -> dict:
    """How well measure_metadata recovers tracks.csv on ``sample`` evenly spaced songs."""
    rows = np.linspace(0, len(catalogue) - 1, sample).astype(int)
    measured = [measure_metadata(load_clip(catalogue.tracks["path"].iloc[r])) for r in rows]
    truth = {c: catalogue.tracks[c].to_numpy(dtype=float)[rows] for c in MEASURED_FEATURES}
    got = {c: np.array([m[c] for m in measured]) for c in MEASURED_FEATURES}
    tempo_error = np.abs(got["tempo"] - truth["tempo"]) / truth["tempo"]
    return {
        "n_songs": int(sample),
        "loudness_r": round(float(np.corrcoef(got["loudness"], truth["loudness"])[0, 1]), 3),
        "loudness_mean_error_db": round(float(np.mean(got["loudness"] - truth["loudness"])), 2),
        "tempo_within_4pct": round(float(np.mean(tempo_error < 0.04)), 3),
        "mode_accuracy": round(float(np.mean(got["mode"] == truth["mode"])), 3),
        "energy_r": round(float(np.corrcoef(got["energy"], truth["energy"])[0, 1]), 3),
    }


def main() -> None:
    parser = training_parser()
    parser.add_argument("--emotion-aux-weight", type=float, default=CNNSpaceConfig().aux_weight)
    parser.add_argument("--measure-sample", type=int, default=24, help="songs for the measured-metadata check (0: skip)")
    args = parser.parse_args()

    catalogue = load_catalogue(Path(args.dir))
    fingerprints = catalogue.audio_fingerprints()
    paths = catalogue.tracks["path"].map(Path).tolist()
    labels = {c: catalogue.labels(c) for c in catalogue.tracks.columns}
    started = time.perf_counter()
    extract_features(paths, fingerprints, kind="mel", cache_dir=features_cache_dir(catalogue))
    mel_s = time.perf_counter() - started

    options = TrainingOptions(device=args.device, max_epochs=args.epochs, catalogue_fingerprint=catalogue.fingerprint(fingerprints))
    fitted, train_s, figures, history = {}, {}, {}, {}
    order = build_order(catalogue, [*BASELINES, *LEARNED_SPACES])
    for name in order:
        cls = space_type(name)
        if any(not catalogue.has_labels(c) for c in cls.required_labels):
            figures[name] = {"skipped": f"no {', '.join(cls.required_labels)} labels"}
            continue
        used = [  # as build does: the optional inputs the catalogue has (store.used_inputs)
            i for i in used_inputs(cls, catalogue, building=order)
            if not i.startswith(SPACE_INPUT_PREFIX) or i.removeprefix(SPACE_INPUT_PREFIX) in fitted
        ]  # fmt: skip
        inputs = space_inputs(
            cls, catalogue, paths=paths, fingerprints=fingerprints, keys=catalogue.track_ids,
            dependency_vectors=lambda d: fitted[d].vectors_, names=used,
        )  # fmt: skip
        space = cls(config=CNNSpaceConfig(aux_weight=args.emotion_aux_weight)) if name == "emotion-cnn" else cls()
        started = time.perf_counter()
        if cls.trainable:
            space.fit(inputs, labels=labels, seed=args.seed, training=options)
            checkpoint = space.checkpoint()
            history[name] = {
                "epochs": len(checkpoint.history.train_loss),
                "best_epoch": checkpoint.history.best_epoch,
                "test_metrics": {k: v for k, v in checkpoint.test_metrics.items() if k != "confusion_matrix"},
            }
        else:
            space.fit(inputs, labels=labels, seed=args.seed)
        train_s[name] = round(time.perf_counter() - started, 2)
        fitted[name] = space
        figures[name] = evaluate_space(catalogue, space, seed=args.seed, metric="cosine")

    test_rows = next((s.test_rows_ for s in fitted.values() if hasattr(s, "test_rows_")), None)
    if test_rows is not None:
        for name in BASELINES:
            same_queries = SimpleNamespace(name=name, vectors_=fitted[name].vectors_, test_rows_=test_rows)
            figures[f"{name}@test"] = evaluate_space(catalogue, same_queries, seed=args.seed, metric="cosine")

    def p5(name: str, label: str) -> float | None:
        return figures.get(name, {}).get(f"{label}_p@5")

    def mean_p5(name: str) -> float | None:
        g, e = p5(name, "genre"), p5(name, "emotion")
        return None if g is None or e is None else round((g + e) / 2, 4)

    learned = [n for n in LEARNED_SPACES if n in fitted]
    baseline_genre = max(p5(n, "genre") or 0.0 for n in (*BASELINES, *(f"{b}@test" for b in BASELINES)))
    best_input = max((mean_p5(n) or 0.0) for n in FUSED if n in fitted) if all(n in fitted for n in FUSED) else None
    learned_total = round(sum(train_s[n] for n in learned), 2)
    print(json.dumps({
        "catalogue": str(catalogue.root),
        "n_tracks": len(catalogue),
        "device": str(choose_device(args.device)),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "mel_features_s": round(mel_s, 2),
        "train_s": train_s,
        "learned_train_total_s": learned_total,
        "target_learned_train_total_s": TARGET_TRAIN_S,
        "history": history,
        "p@5": {
            name: {
                "genre": p5(name, "genre"), "emotion": p5(name, "emotion"), "mean": mean_p5(name),
                "genre_artist_filtered": figures[name].get("genre_p@5_artist_filtered"),
                "n_queries": figures[name].get("n_queries", {}).get("genre_p@5"), "held_out": figures[name].get("held_out"),
            }
            for name in figures if "skipped" not in figures[name] or "genre_p@5" in figures[name]
        },
        "checks": {
            "beats_baselines_on_genre_p@5": {n: (p5(n, "genre") or 0.0) > baseline_genre for n in learned},
            "fusion_mean_vs_best_single_input": None if best_input is None else [mean_p5("fusion-ae"), best_input],
            "train_within_target": learned_total <= TARGET_TRAIN_S,
        },
        "measured_metadata_vs_tracks_csv": (
            _measurement_agreement(catalogue, args.measure_sample)
            if args.measure_sample and all(catalogue.has_labels(c) for c in SPOTIFY_FEATURES) else None
        ),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
