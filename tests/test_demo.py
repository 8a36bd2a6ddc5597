"""Tests of the demo catalogue generator (songsim.demo: styles, composer, render).

A small demo (2 clips per genre) is rendered twice, serially and on two worker processes,
and shared by the tests of this module; the full 240-clip catalogue is a slow test.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from songsim.catalogue import EMOTIONS, thayer_quadrant
from songsim.config import CLIP_DURATION_S, SAMPLE_RATE_HZ
from songsim.demo import composer, render, styles
from songsim.errors import SongsimError

SMALL = 2  # tracks per genre of the shared demo


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo of 2 clips per genre, rendered in this process; returns its tracks.csv."""
    return render.make_demo(tmp_path_factory.mktemp("demo") / "cat", tracks_per_genre=SMALL,
                            n_jobs=1)


@pytest.fixture(scope="module")
def small_demo_parallel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same demo rendered by two worker processes."""
    return render.make_demo(tmp_path_factory.mktemp("demo_parallel") / "cat",
                            tracks_per_genre=SMALL, n_jobs=2)


# --------------------------------------------------------------------------- plan (no audio)


def test_the_plan_has_genres_artists_albums_and_eras() -> None:
    specs = styles.plan_catalogue(seed=0, tracks_per_genre=30)
    assert len(specs) == len(styles.GENRES) * 30 >= 240
    assert len({s.track_id for s in specs}) == len(specs)
    assert len({s.title for s in specs}) == len(specs)
    for genre in styles.GENRES:
        mine = [s for s in specs if s.genre == genre]
        assert len(mine) == 30
        assert len({s.artist for s in mine}) == 3
        assert len({(s.artist, s.album) for s in mine}) == 6
        assert len({s.mood for s in mine}) >= 2  # emotion cuts across genre
    years = [s.year for s in specs]
    assert min(years) <= 1960 and max(years) >= 2015
    for artist in {s.artist for s in specs}:  # an artist's albums share one style
        mine = [s for s in specs if s.artist == artist]
        assert len({s.artist_index for s in mine}) == 1
        assert len({s.album for s in mine}) == 2


def test_the_plan_is_deterministic_and_depends_on_the_seed() -> None:
    assert styles.plan_catalogue(seed=3, tracks_per_genre=4) == styles.plan_catalogue(
        seed=3, tracks_per_genre=4)
    assert styles.plan_catalogue(seed=3, tracks_per_genre=4) != styles.plan_catalogue(
        seed=4, tracks_per_genre=4)


def test_composition_follows_tempo_and_harmony() -> None:
    spec = next(s for s in styles.plan_catalogue(seed=0, tracks_per_genre=3)
                if s.genre == "house")
    buses = composer.compose(spec)
    beat_s = 60.0 / spec.tempo_bpm
    kicks = np.array([n.start_s for n in buses["drums"] if n.key == styles.KICK])
    phase = (kicks / beat_s) % 1.0
    assert np.all(np.minimum(phase, 1 - phase) < 0.03)  # four on the floor, on the beat
    assert len(kicks) >= 0.8 * CLIP_DURATION_S / beat_s
    assert all(buses[bus] for bus in ("drums", "bass", "comp", "lead"))
    assert max(n.start_s for bus in buses.values() for n in bus) >= CLIP_DURATION_S - 2 * beat_s


def test_render_track_is_a_mastered_clip() -> None:
    spec = styles.plan_catalogue(seed=0, tracks_per_genre=1)[2]
    clip = render.render_track(spec)
    assert clip.shape == (round(CLIP_DURATION_S * SAMPLE_RATE_HZ),)
    assert clip.dtype == np.float32 and np.isfinite(clip).all()
    assert np.abs(clip).max() <= render.PEAK_CEILING
    assert 20 * np.log10(np.sqrt(np.mean(clip**2))) > -40.0
    np.testing.assert_array_equal(clip, render.render_track(spec))


def test_an_empty_demo_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SongsimError, match="tracks_per_genre"):
        render.make_demo(tmp_path, tracks_per_genre=0)


# ------------------------------------------------------------------------ the rendered demo


def test_tracks_csv_has_every_column_with_valid_values(small_demo: Path) -> None:
    with small_demo.open(newline="", encoding="utf-8") as handle:
        assert tuple(next(csv.reader(handle))) == render.COLUMNS
    rows = _read_csv(small_demo)
    assert len(rows) == len(styles.GENRES) * SMALL
    assert len({r["track_id"] for r in rows}) == len(rows)
    for row in rows:
        assert re.fullmatch(rf"{row['genre']}-\d{{4}}", row["track_id"])
        assert row["path"] == f"audio/{row['genre']}/{row['track_id']}.ogg"
        assert row["genre"] in styles.GENRES and row["title"] and row["artist"] and row["album"]
        assert 1950 <= int(row["year"]) <= 2025
        valence, arousal = float(row["valence"]), float(row["arousal"])
        assert 1.0 <= valence <= 9.0 and 1.0 <= arousal <= 9.0
        assert row["emotion"] in EMOTIONS
        assert row["emotion"] == thayer_quadrant(valence, arousal)
        for column in ("danceability", "energy", "speechiness", "acousticness",
                       "instrumentalness", "liveness"):
            assert 0.0 <= float(row[column]) <= 1.0, column
        assert -60.0 <= float(row["loudness"]) <= 0.0
        assert row["mode"] in ("0", "1")
        assert 40.0 <= float(row["tempo"]) <= 240.0
        assert row["time_signature"] in ("3", "4", "5")


def test_clips_are_30_s_mono_22050_hz_ogg_files(small_demo: Path) -> None:
    for row in _read_csv(small_demo):
        path = small_demo.parent / row["path"]
        info = sf.info(path)
        assert (info.format, info.subtype) == ("OGG", "VORBIS")
        assert info.channels == 1 and info.samplerate == SAMPLE_RATE_HZ
        clip, _ = sf.read(path, dtype="float32")
        assert len(clip) == round(CLIP_DURATION_S * SAMPLE_RATE_HZ)
        assert np.isfinite(clip).all() and np.abs(clip).max() <= 1.0
        rms_db = 20 * np.log10(np.sqrt(np.mean(clip.astype(np.float64) ** 2)))
        assert rms_db == pytest.approx(float(row["loudness"]), abs=0.5)


def test_the_beat_is_at_the_stated_tempo(small_demo: Path) -> None:
    """A listening proxy: librosa finds the tempo of tracks.csv (up to an octave)."""
    librosa = pytest.importorskip("librosa")
    hits = 0
    rows = _read_csv(small_demo)
    for row in rows:
        clip, sr_hz = sf.read(small_demo.parent / row["path"], dtype="float32")
        envelope = librosa.onset.onset_strength(y=clip, sr=sr_hz)
        found = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=envelope, sr=sr_hz))[0])
        ratio = found / float(row["tempo"])
        hits += any(abs(ratio / octave - 1.0) < 0.05 for octave in (0.5, 1.0, 2.0))
    assert hits >= 0.8 * len(rows)


def test_the_same_seed_gives_identical_demos_whatever_n_jobs(
        small_demo: Path, small_demo_parallel: Path) -> None:
    assert small_demo.read_bytes() == small_demo_parallel.read_bytes()
    for row in _read_csv(small_demo):
        serial, _ = sf.read(small_demo.parent / row["path"], dtype="float32")
        parallel, _ = sf.read(small_demo_parallel.parent / row["path"], dtype="float32")
        np.testing.assert_array_equal(serial, parallel)


def test_a_built_demo_is_not_rendered_again(small_demo: Path) -> None:
    clips = sorted(small_demo.parent.glob("audio/*/*.ogg"))
    before = {p: p.stat().st_mtime_ns for p in [small_demo, *clips]}
    calls: list[tuple[int, int, str]] = []
    again = render.make_demo(small_demo.parent, tracks_per_genre=SMALL,
                             on_progress=lambda *args: calls.append(args))
    assert again == small_demo
    assert calls == [(len(clips), len(clips), "demo catalogue already built")]
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_a_demo_of_another_seed_is_rendered_again(small_demo: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "cat"
    shutil.copytree(small_demo.parent, copy)
    rendered: list[str] = []

    def fake_render(spec: styles.TrackSpec, out_dir: str, audio_format: str) -> tuple[str, float]:
        rendered.append(spec.track_id)
        return spec.track_id, -20.0

    monkeypatch.setattr(render, "_render_to_file", fake_render)
    progress: list[tuple[int, int, str]] = []
    render.make_demo(copy, seed=1, tracks_per_genre=SMALL, n_jobs=1,
                     on_progress=lambda *args: progress.append(args))
    assert len(rendered) == len(styles.GENRES) * SMALL
    assert [p[0] for p in progress] == list(range(1, len(rendered) + 1))
    assert json.loads((copy / render.MANIFEST_JSON).read_text())["seed"] == 1


def test_flac_clips_are_the_same_music_losslessly(small_demo: Path, tmp_path: Path) -> None:
    csv_path = render.make_demo(tmp_path / "cat", tracks_per_genre=1, n_jobs=1,
                                audio_format="flac")
    row = _read_csv(csv_path)[0]
    assert row["path"].endswith(".flac")
    flac, _ = sf.read(csv_path.parent / row["path"], dtype="float32")
    ogg, _ = sf.read(small_demo.parent / row["path"].replace(".flac", ".ogg"), dtype="float32")
    assert np.corrcoef(flac, ogg)[0, 1] > 0.95  # the same clip, before and after Vorbis
    with pytest.raises(SongsimError, match="audio_format"):
        render.make_demo(tmp_path / "other", audio_format="mp3")


@pytest.mark.slow
def test_the_full_demo_spreads_emotions_over_every_genre(tmp_path: Path) -> None:
    rows = _read_csv(render.make_demo(tmp_path / "cat", audio_format="flac"))  # as the app renders it
    assert len(rows) >= 240
    quadrants = Counter(row["emotion"] for row in rows)
    assert all(quadrants[q] >= 0.1 * len(rows) for q in EMOTIONS), quadrants
    for genre in styles.GENRES:
        assert len({row["emotion"] for row in rows if row["genre"] == genre}) >= 2, genre
    assert len({row["year"][:3] for row in rows}) >= 6  # decades from the 1950s to the 2010s
