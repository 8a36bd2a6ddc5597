"""Upload → top-5 latency: decode, features, embed, search, map transform (median over repeats).

    python -m bench.bench_query DIR [--repeats 10] [--space handcrafted] [--method umap]

DIR is a built catalogue (default: the demo under $SONGSIM_HOME). Each repeat uploads a
*new* 30 s clip (a catalogue clip with a little noise, so no cache can answer it), exactly as
the Explore page does. Prints JSON with per-stage medians in milliseconds.
"""

import argparse
import io
import json
import time
from statistics import median

import numpy as np
import soundfile as sf

from songsim import config
from songsim.audio import load_clip
from songsim.catalogue import load_catalogue
from songsim.features import handcrafted_features
from songsim.maps import warm_up
from songsim.neighbours import ExactIndex
from songsim.query import neighbours_of, store_upload
from songsim.spaces.store import load_or_fit_map, load_space, space_dir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", nargs="?", default=str(config.default_demo_dir()))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--space", default="handcrafted")
    parser.add_argument("--method", default="umap")
    args = parser.parse_args()
    catalogue = load_catalogue(args.dir)
    space = load_space(space_dir(catalogue.derived_dir, args.space))
    index = ExactIndex(space.vectors_, metric="cosine")
    fitted = load_or_fit_map(catalogue, space, args.method)
    warm_up(fitted)
    source = load_clip(catalogue.tracks["path"][0])
    handcrafted_features(source)  # warm librosa/numba, as the app's first query would have
    stages = {k: [] for k in ("store_and_decode", "features", "embed", "search", "map_transform", "total")}
    rng = np.random.default_rng(0)
    for _ in range(args.repeats):
        buffer = io.BytesIO()
        sf.write(buffer, source + 1e-3 * rng.standard_normal(source.size).astype(np.float32), config.SAMPLE_RATE_HZ, format="OGG")
        data = buffer.getvalue()
        t0 = time.perf_counter()
        upload = store_upload(catalogue, data, "bench.ogg")
        clip = load_clip(upload.path)
        t1 = time.perf_counter()
        features = handcrafted_features(clip)
        t2 = time.perf_counter()
        vector = space.transform({"handcrafted": features[None, :]})[0]
        t3 = time.perf_counter()
        neighbours_of(catalogue, index, vector=vector, query_row=upload.catalogue_row, k=5)
        t4 = time.perf_counter()
        fitted.transform(vector[None, :])
        t5 = time.perf_counter()
        for key, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0)):
            stages[key].append(seconds * 1000)
        upload.path.unlink()
    print(json.dumps({
        "n_tracks": len(catalogue),
        "space": args.space,
        "map": args.method,
        "repeats": args.repeats,
        "median_ms": {k: round(median(v), 1) for k, v in stages.items()},
        "target_total_ms": 1000,
    }, indent=2))


if __name__ == "__main__":
    main()
