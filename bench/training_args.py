"""Command-line options shared by the training benchmarks (bench_train, bench_literature)."""

from __future__ import annotations

import argparse

from songsim import config


def training_parser() -> argparse.ArgumentParser:
    """A parser with ``--dir`` (the catalogue; default the demo), ``--device``, ``--epochs``
    (overrides every model's maximum) and ``--seed``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default=str(config.default_demo_dir()))
    parser.add_argument("--device", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="override every model's max epochs")
    parser.add_argument("--seed", type=int, default=0)
    return parser
