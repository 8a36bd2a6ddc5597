"""Cold demo build: seconds per stage and clips/s, as the app's first start does it.

    python -m bench.bench_build [--dir DIR] [--tracks-per-genre 30]

Prints JSON. Uses a fresh folder (a temporary one by default) so nothing is cached.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from songsim.build import DEFAULT_SPACES, DEMO_AUDIO_FORMAT, build
from songsim.demo.render import make_demo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default=None)
    parser.add_argument("--tracks-per-genre", type=int, default=30)
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="songsim-bench-")) / "demo"
    started = time.perf_counter()
    make_demo(root, tracks_per_genre=args.tracks_per_genre, audio_format=DEMO_AUDIO_FORMAT)
    demo_s = time.perf_counter() - started
    report = build(root, spaces=DEFAULT_SPACES)
    total_s = time.perf_counter() - started
    n = report.n_tracks
    print(json.dumps({
        "n_tracks": n,
        "demo_render_s": round(demo_s, 2),
        "demo_clips_per_s": round(n / demo_s, 2),
        "build_stage_s": {k: round(v, 2) for k, v in report.stage_seconds.items()},
        "cold_total_s": round(total_s, 2),
        "target_cold_total_s": 120,
    }, indent=2))


if __name__ == "__main__":
    main()
