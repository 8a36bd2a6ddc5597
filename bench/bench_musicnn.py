"""Seconds per 30 s clip of the pretrained MusiCNN feature on one CPU core, against the
mel-spectrogram floor measured in the same run.

    python -m bench.bench_musicnn [DIR] [--clips 8] [--repeats 2]

DIR is a catalogue folder (default: the demo under $SONGSIM_HOME when it exists, else a small
demo rendered into a temporary folder: 30 s multi-instrument clips, as the app's first start
makes them; ``bench.bench_features.source_clips``).

The process is pinned to one core (``os.sched_setaffinity``), and the feature runs as a
build runs it (one torch thread, one BLAS thread). Measured on the same decoded clips, each
pass ``--repeats`` times, best pass kept (the machine may be shared):

1. **floor**: :func:`songsim.features.log_mel_spectrogram` per clip (songsim's own 64-band
   mel, the least any audio feature costs after decoding);
2. **musicnn**: :func:`songsim.features.musicnn_features` per clip (resample to 16 kHz,
   musicnn's 96-band log-mel, all 10 patches through ``MSD_musicnn`` in one batch, mean),
   and its parts: the resampling + log-mel, and the network;
3. the network's multiply-adds per clip against this core's single-thread float32 matrix
   product speed (torch, 2048²), i.e. the least the network could take here with dense
   float32 convolutions;
4. with a CUDA device, the same feature on it (the clip's patches in one batch).

``ratio_to_floor`` = floor seconds / musicnn seconds (1.0 = no slower than one mel
spectrogram; 0.05 = twenty times slower). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from songsim import config
from songsim.audio import load_clip
from songsim.benchmarks import machine_conditions

TARGET_S = 0.15  # the target per 30 s clip on one CPU core


def _network_macs(n_patches: int) -> int:
    """Multiply-adds of MSD_musicnn's convolutions and dense layers for ``n_patches`` patches."""
    from songsim.models import musicnn as mn

    t, f = mn.PATCH_FRAMES, mn.N_MELS
    timbral = sum(t * (f - h + 1) * 7 * h * mn.TIMBRAL_FILTERS for h in mn.TIMBRAL_HEIGHTS)
    temporal = sum(t * f * k * mn.TEMPORAL_FILTERS for k in mn.TEMPORAL_LENGTHS)
    midend = t * 7 * mn.MIDEND_FILTERS * (mn.FRONTEND_CHANNELS + 2 * mn.MIDEND_FILTERS)
    dense = 2 * mn.MIDEND_CHANNELS * mn.EMBEDDING_DIM + mn.EMBEDDING_DIM * mn.N_TAGS
    return n_patches * (timbral + temporal + midend + dense)


def _matmul_gflops() -> float:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(3))
    return 2 * 2048**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _best_pass(fn, clips: list[np.ndarray], repeats: int) -> float:
    """Seconds per clip of the fastest of ``repeats`` passes over ``clips``."""
    return min(_timed(lambda: [fn(clip) for clip in clips]) for _ in range(repeats)) / len(clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", default=None)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})

    import torch

    from bench.bench_features import source_clips
    from songsim.features import (
        _single_threaded_blas,
        log_mel_spectrogram,
        musicnn_features,
    )
    from songsim.models import musicnn as mn

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="songsim-bench-musicnn-") as tmp:
        paths, source = source_clips(args.dir, args.clips, Path(tmp))
        clips = [load_clip(p) for p in paths]  # decoded before timing: both pipelines start here
    n_patches = [mn.musicnn_patches(mn.musicnn_log_mel(c, sr_hz=config.SAMPLE_RATE_HZ)).shape[0] for c in clips]
    musicnn_features(clips[0])  # warm: weights, librosa, FFT plans, oneDNN kernels
    log_mel_spectrogram(clips[0])
    model = mn._process_model("cpu")  # noqa: SLF001 - the one musicnn_features uses

    def front(clip):
        with _single_threaded_blas():
            return mn.musicnn_patches(mn.musicnn_log_mel(clip, sr_hz=config.SAMPLE_RATE_HZ))

    patches = [torch.from_numpy(front(c)) for c in clips]

    def network(x):
        with mn.single_threaded_torch(), torch.no_grad():
            return model(x)

    floor_s = _best_pass(log_mel_spectrogram, clips, args.repeats)
    musicnn_s = _best_pass(musicnn_features, clips, args.repeats)
    front_s = _best_pass(front, clips, args.repeats)
    network_s = _best_pass(network, patches, args.repeats)
    floor_after_s = _best_pass(log_mel_spectrogram, clips, args.repeats)
    gflops = _matmul_gflops()
    macs = _network_macs(int(np.mean(n_patches)))

    gpu = None
    if torch.cuda.is_available():
        mn.embed_clip(clips[0], sr_hz=config.SAMPLE_RATE_HZ, device="cuda")

        def on_gpu(clip):
            mn.embed_clip(clip, sr_hz=config.SAMPLE_RATE_HZ, device="cuda")
            torch.cuda.synchronize()

        gpu = {"device": torch.cuda.get_device_name(0), "seconds_per_clip": round(_best_pass(on_gpu, clips, args.repeats), 4)}

    print(json.dumps({
        "clips": len(clips),
        "clip_duration_s": config.CLIP_DURATION_S,
        "patches_per_clip": float(np.mean(n_patches)),
        "source": source,
        "cpu_core": core,
        "seconds_per_clip": {
            "floor_log_mel_spectrogram": round(min(floor_s, floor_after_s), 4),
            "floor_before_after": [round(floor_s, 4), round(floor_after_s, 4)],
            "musicnn_features": round(musicnn_s, 4),
            "musicnn_resample_and_log_mel": round(front_s, 4),
            "musicnn_network": round(network_s, 4),
        },
        "ratio_to_floor": round(min(floor_s, floor_after_s) / musicnn_s, 4),
        "target_s": TARGET_S,
        "network": {
            "multiply_adds_per_clip": macs,
            "achieved_gflops": round(2 * macs / network_s / 1e9, 1),
            "matmul_gflops_one_core": round(gflops, 1),
            "least_seconds_at_matmul_speed": round(2 * macs / (gflops * 1e9), 4),
        },
        "gpu": gpu,
        "torch": torch.__version__,
        "machine": machine_conditions(load_at_start),
    }, indent=2))


if __name__ == "__main__":
    main()
