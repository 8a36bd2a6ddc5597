"""A small labelled catalogue of synthetic songs for tests that need a built catalogue fast.

Four "genres" with distinct timbres (pad chords, noisy drums, saw bass, plucked notes), two
artists each, 6 s WAV clips: features, spaces and maps build in seconds. Tests of the real
demo generator live in test_demo.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR_HZ = 22_050
GENRES = ("pads", "drums", "bass", "pluck")


def _song(genre: str, variant: int, rng: np.random.Generator, seconds: float = 6.0) -> np.ndarray:
    t = np.arange(int(seconds * SR_HZ)) / SR_HZ
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    if genre == "pads":
        y = sum(np.sin(2 * np.pi * root * r * t) for r in (2, 2.52, 3.0)) / 3
    elif genre == "drums":
        beat = (t * (2 + variant % 3)) % 1.0
        y = rng.standard_normal(t.size) * np.exp(-beat * 25) + np.sin(2 * np.pi * 60 * t) * np.exp(-beat * 10)
    elif genre == "bass":
        y = 2 * ((root * t) % 1.0) - 1
    else:
        note = (t * 4) % 1.0
        y = np.sin(2 * np.pi * root * 4 * t) * np.exp(-note * 8)
    y = y + 0.01 * rng.standard_normal(t.size)
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def make_small_catalogue(root: Path, *, per_genre: int = 6, seed: int = 0) -> Path:
    """Write ``root/tracks.csv`` and ``root/audio/*.wav``; returns ``root``."""
    rng = np.random.default_rng(seed)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    lines = ["track_id,path,title,artist,album,year,genre,valence,arousal"]
    for g, genre in enumerate(GENRES):
        for i in range(per_genre):
            track_id = f"{genre}-{i:02d}"
            sf.write(root / "audio" / f"{track_id}.wav", _song(genre, i, rng), SR_HZ)
            artist = f"{genre.title()} Artist {i % 2 + 1}"
            valence, arousal = 2 + 6 * ((i + g) % 3) / 2, 2 + 6 * ((i // 3 + g) % 2)
            lines.append(
                f"{track_id},audio/{track_id}.wav,Song {g}{i},{artist},{artist} LP,{1960 + 10 * g + i},{genre},{valence},{arousal}"
            )
    (root / "tracks.csv").write_text("\n".join(lines) + "\n")
    return root


def assert_upload_path_gives_catalogue_vectors(root: Path, space_name: str, *, atol: float) -> None:
    """A catalogue song sent down the upload path (stored, decoded, featurised, embedded through
    the fitted space and the spaces it builds on) gets its catalogue vector: a held-out row
    (for a trained space) and row 7."""
    from songsim.catalogue import load_catalogue
    from songsim.query import embed_upload, store_upload
    from songsim.spaces.store import load_built_space

    catalogue = load_catalogue(root)
    space = load_built_space(catalogue, space_name)
    for row in (int(space.test_rows_[0]) if hasattr(space, "test_rows_") else 0, 7):
        path = Path(catalogue.tracks["path"].iloc[row])
        upload = store_upload(catalogue, path.read_bytes(), path.name)
        vector = embed_upload(catalogue, space, upload, load_space=lambda n: load_built_space(catalogue, n))
        np.testing.assert_allclose(vector, space.vectors_[row], rtol=1e-5, atol=atol)


#: the spaces that tests/conftest.py's ``trained_catalogue`` builds beyond the default ones: every
#: space whose labels this catalogue has (metadata needs Spotify-style features: tests/test_learned.py
#: builds it on a catalogue of its own), the pretrained musicnn and the distance-based musly too; the
#: fused spaces (fusion-ae, triplet, ae-2d) over the inputs it has: genre-cnn, emotion-cnn, handcrafted
#: and musicnn, not metadata; and musicnn-triplet, the metric-learning head over musicnn ...
TRAINED_SPACES = (
    "genre-cnn", "emotion-cnn", "spectrogram-pca", "spectrogram-l2", "wavenet", "chroma-lstm", "ali", "musicnn", "musly",
    "fusion-ae", "triplet", "ae-2d", "musicnn-triplet",
)  # fmt: skip
#: ... each trainable one trained for this many epochs (an epochs override: its fit key says so)
TRAINED_EPOCHS = 1
