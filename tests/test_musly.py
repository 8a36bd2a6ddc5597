"""The ``musly`` space: Musly's timbre distances with mutual proximity, a distance-based space.

The references (``tests/fixtures/musly_reference.npz``) were made by pymusly's own calls
(``track_from_audiofile(path, 30, -48)``, ``set_style``, ``add_tracks``, ``compute_similarity``)
on the songs of ``tests/fixtures/musly_clips.py`` (``tests/fixtures/make_musly_reference.py``,
run by hand); here songsim builds its space from the same songs and must give the same numbers.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from songsim.audio import load_clip
from songsim.build import build
from songsim.catalogue import load_catalogue
from songsim.cli import main
from songsim.errors import FeatureExtractionError, MuslyNotInstalledError, SongsimError
from songsim.features import CLIP_OPTIONS, MUSLY_DIM, extract_features, feature_cache_dir
from songsim.models import musly
from songsim.neighbours import PRECOMPUTED
from songsim.query import embed_upload, store_upload
from songsim.spaces.base import describe_space, space_type
from songsim.spaces.store import SPACE_FILE, features_cache_dir, load_built_space, space_dir

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))

from dask_cluster import local_cluster  # noqa: E402
from musly_clips import CATALOGUE, SR_HZ, UPLOAD, write_catalogue, write_song  # noqa: E402

#: songsim decodes the same 16-bit WAV samples as the reference script: no difference at all is
#: expected; the tolerance only allows for another float summation order in a future libmusly
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURES / "musly_reference.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def musly_catalogue(tmp_path_factory) -> Path:
    """The songs of musly_clips.CATALOGUE, with the musly space built (no maps)."""
    root = write_catalogue(tmp_path_factory.mktemp("musly") / "catalogue")
    report = build(root, spaces=["musly"], map_methods=(), n_jobs=1)
    assert report.built == ["musly"], report
    return root


@pytest.fixture(scope="module")
def space(musly_catalogue):
    return load_built_space(load_catalogue(musly_catalogue), "musly")


def _upload(root: Path, folder: Path, name: str, spec: tuple):
    catalogue = load_catalogue(root)
    path = write_song(folder, name, spec)
    upload = store_upload(catalogue, path.read_bytes(), path.name)
    return catalogue, upload


def test_the_reference_was_made_by_the_pinned_musly(reference):
    assert str(reference["musly_version"]) == musly.musly_version()
    assert list(reference["names"]) == list(CATALOGUE)


def test_musly_is_a_registered_distance_space():
    cls = space_type("musly")
    described = describe_space(cls)
    assert described["metric"] == PRECOMPUTED == "precomputed"
    assert described["family"] == "pretrained" and described["origin"] == "built-in"
    assert described["embeds_uploads"] and not described["trainable"] and described["required_labels"] == []
    assert described["inputs"] == ["musly"]


def test_the_space_reproduces_muslys_own_tracks_and_distances(space, reference):
    assert space.vectors_.dtype == np.float32 and space.vectors_.shape == (len(CATALOGUE), len(CATALOGUE))
    assert space.dim == len(CATALOGUE)
    assert np.abs(space.tracks_ - reference["tracks"]).max() <= TOLERANCE
    assert np.abs(space.vectors_ - reference["distances"]).max() <= TOLERANCE
    np.testing.assert_array_equal(np.diag(space.vectors_), 0.0)
    off_diagonal = space.vectors_[~np.eye(len(CATALOGUE), dtype=bool)]
    assert (off_diagonal > 0).all() and (off_diagonal <= 1).all()  # mutual proximity: in (0, 1]


def test_the_excerpt_is_muslys_30_s_from_48_s_at_the_latest(musly_catalogue):
    audio = musly_catalogue / "audio"
    options = CLIP_OPTIONS["musly"]
    for name, (_, duration_s) in CATALOGUE.items():
        whole = load_clip(audio / f"{name}.wav", duration_s=None)
        clip = load_clip(audio / f"{name}.wav", **options)
        start_s = 0.0 if duration_s <= 30 else min(48.0, (duration_s - 30.0) / 2)
        start = int(start_s * SR_HZ)
        np.testing.assert_array_equal(clip, whole[start:start + min(whole.size, 30 * SR_HZ)], err_msg=name)
    # the other kinds keep the middle 30 s: the long song's excerpt starts at 55 s for them
    long_clip = load_clip(audio / "beat.wav")
    np.testing.assert_array_equal(long_clip, load_clip(audio / "beat.wav", duration_s=None)[55 * SR_HZ:85 * SR_HZ])


def test_an_upload_gets_the_row_musly_gives_a_song_added_to_the_collection(musly_catalogue, space, reference, tmp_path):
    catalogue, upload = _upload(musly_catalogue, tmp_path, *UPLOAD)
    assert upload.catalogue_row is None
    row = embed_upload(catalogue, space, upload, load_space=lambda name: load_built_space(catalogue, name))
    assert row.shape == (len(CATALOGUE),) and row.dtype == np.float32
    assert np.abs(row - reference["upload_distances"]).max() <= TOLERANCE
    assert np.argmin(row) == list(CATALOGUE).index("pluck")  # its nearest song: the same instrument


def test_an_upload_identical_to_a_catalogue_song_gets_that_songs_row(musly_catalogue, space, tmp_path):
    catalogue, upload = _upload(musly_catalogue, tmp_path, "beat", CATALOGUE["beat"])
    j = list(CATALOGUE).index("beat")
    assert upload.catalogue_row == j
    row = embed_upload(catalogue, space, upload, load_space=lambda name: load_built_space(catalogue, name))
    others = np.arange(len(CATALOGUE)) != j
    np.testing.assert_array_equal(row[others], space.vectors_[j, others])
    # to Musly the upload is another track: a small distance to its twin, still the smallest
    assert 0 < row[j] < row[others].min()


def test_transform_is_the_jukebox_path_for_many_songs_at_once(space):
    rows = space.transform({"musly": space.tracks_[[1, 3]]})
    assert rows.shape == (2, len(CATALOGUE))
    for i, j in enumerate((1, 3)):
        others = np.arange(len(CATALOGUE)) != j
        np.testing.assert_array_equal(rows[i, others], space.vectors_[j, others])


def test_the_jukebox_is_stored_as_bytes_and_arrays_not_pymusly_objects(musly_catalogue, space):
    stored = (space_dir(musly_catalogue / ".songsim", "musly") / SPACE_FILE).read_bytes()
    assert b"pymusly" not in stored
    assert isinstance(space.jukebox_, bytes) and space.jukebox_.startswith(musly.musly_version().split("/")[0].encode())
    assert space.tracks_.shape == (len(CATALOGUE), MUSLY_DIM) and space.style_rows_.tolist() == list(range(len(CATALOGUE)))
    assert b"pymusly" not in pickle.dumps(space)


def test_a_jukebox_stream_this_musly_cannot_read_is_rebuilt_to_the_same_numbers(space):
    damaged = b"0.0-not-musly\0" + space.jukebox_[20:]
    rebuilt = musly.upload_distances(space.tracks_[:2], state=damaged, track_values=space.tracks_, rows=space.style_rows_)
    stored = musly.upload_distances(space.tracks_[:2], state=space.jukebox_, track_values=space.tracks_, rows=space.style_rows_)
    np.testing.assert_array_equal(rebuilt, stored)


def test_the_musly_feature_is_cached_per_content_and_resumes(musly_catalogue, tmp_path):
    import shutil

    root = Path(shutil.copytree(musly_catalogue, tmp_path / "copy"))
    catalogue = load_catalogue(root)
    folder = feature_cache_dir(features_cache_dir(catalogue), "musly")
    assert json.loads((folder / "settings.json").read_text())["clip_position"] == "middle, from 48 s at the latest"
    assert all((folder / f"{fp}.npy").is_file() for fp in catalogue.audio_fingerprints())  # (uploads are cached here too)
    (folder / f"{catalogue.audio_fingerprints()[2]}.npy").unlink()  # as if killed before this one
    progress = []
    values = extract_features(
        list(catalogue.tracks["path"]), catalogue.audio_fingerprints(), kind="musly", cache_dir=features_cache_dir(catalogue),
        n_jobs=1, on_progress=lambda done, total: progress.append(done),
    )  # fmt: skip
    assert progress[0] == len(CATALOGUE) - 1 and progress[-1] == len(CATALOGUE)  # only the missing one computed
    assert values.shape == (len(CATALOGUE), MUSLY_DIM) and values.dtype == np.float32
    report = build(root, spaces=["musly"], map_methods=(), n_jobs=1)
    assert report.built == [] and "musly" in report.reused


def test_style_rows_are_every_track_up_to_1000_then_a_seeded_sample():
    np.testing.assert_array_equal(musly.style_rows(7), np.arange(7))
    rows = musly.style_rows(1500, seed=3)
    assert rows.size == musly.STYLE_MAX_TRACKS == 1000 and np.unique(rows).size == 1000 and (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(rows, musly.style_rows(1500, seed=3))
    assert not np.array_equal(rows, musly.style_rows(1500, seed=4))


def test_silence_and_too_short_audio_give_errors_naming_the_file(silent_wav, short_wav, tmp_path):
    with pytest.raises(FeatureExtractionError) as caught:
        extract_features([silent_wav, short_wav], ["silent", "short"], kind="musly", cache_dir=tmp_path, n_jobs=1)
    assert set(caught.value.failures) == {str(silent_wav), str(short_wav)}
    assert "silent" in caught.value.failures[str(silent_wav)] and "short" in caught.value.failures[str(short_wav)]
    assert "Traceback" not in str(caught.value)


def test_what_musly_itself_cannot_model_is_a_clear_error():
    with pytest.raises(SongsimError, match="undefined.*silent"):
        musly.analyse_clip(np.zeros(30 * SR_HZ, dtype=np.float32))  # Musly gives NaN, silently
    with pytest.raises(SongsimError, match="cannot analyse its 0.05 s excerpt"):
        musly.analyse_clip(np.full(SR_HZ // 20, 0.1, dtype=np.float32))


def test_a_build_with_a_silent_song_names_it_and_keeps_the_others(musly_catalogue, tmp_path, capsys):
    import shutil

    import soundfile as sf

    root = Path(shutil.copytree(musly_catalogue, tmp_path / "copy"))
    shutil.rmtree(root / ".songsim")
    sf.write(root / "audio" / "bell.wav", np.zeros(60 * SR_HZ, dtype=np.float32), SR_HZ, subtype="PCM_16")
    assert main(["build", str(root), "--spaces", "musly", "--maps", "none", "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert "bell.wav" in err and "silent" in err and "Traceback" not in err
    folder = feature_cache_dir(root / ".songsim" / "features", "musly")
    assert len(list(folder.glob("*.npy"))) == len(CATALOGUE) - 1


def test_without_pymusly_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymusly", None)
    monkeypatch.setattr(musly, "_analysis_jukebox", musly._analysis_jukebox.__wrapped__)
    with pytest.raises(MuslyNotInstalledError, match="pip install -r requirements.txt"):
        musly.analyse_clip(np.ones(SR_HZ, dtype=np.float32))


def _cli_neighbours(capsys, *args: str) -> dict:
    assert main(["query", *args, "--space", "musly", "-k", "3", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _nearest(distances: np.ndarray, *, leave_out: str | None = None, k: int = 3) -> list[str]:
    names = list(CATALOGUE)
    return [names[i] for i in np.argsort(distances, kind="stable") if names[i] != leave_out][:k]


def test_query_cli_ranks_a_catalogue_song_and_an_upload_by_muslys_distances(musly_catalogue, reference, tmp_path, capsys):
    names = list(CATALOGUE)
    found = _cli_neighbours(capsys, str(musly_catalogue), "--track", "pluck")
    assert found["metric"] == "precomputed"
    distances = reference["distances"][names.index("pluck")]
    expected = _nearest(distances, leave_out="pluck")
    assert [row["track_id"] for row in found["neighbours"]] == expected
    scores = [row["score"] for row in found["neighbours"]]
    np.testing.assert_allclose(scores, [-distances[names.index(n)] for n in expected], atol=1e-6)

    song = write_song(tmp_path, *UPLOAD)
    found = _cli_neighbours(capsys, str(musly_catalogue), "--audio", str(song))
    assert [row["track_id"] for row in found["neighbours"]] == _nearest(reference["upload_distances"])


@pytest.mark.timeout(600)
def test_a_dask_build_gives_bit_identical_tracks_and_distances(musly_catalogue, space, tmp_path):
    import shutil

    root = Path(shutil.copytree(musly_catalogue, tmp_path / "copy", ignore=shutil.ignore_patterns(".songsim")))
    with local_cluster() as cluster:
        report = build(root, spaces=["musly"], map_methods=(), dask_address=cluster.scheduler_address)
    assert report.features == {"musly": {"computed": len(CATALOGUE), "reused": 0}}
    remote = load_built_space(load_catalogue(root), "musly")
    np.testing.assert_array_equal(remote.tracks_, space.tracks_)
    np.testing.assert_array_equal(remote.vectors_, space.vectors_)
