"""tracks.csv loading: only track_id and path required, every bad row reported with its line."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from songsim.catalogue import load_catalogue, thayer_quadrant
from songsim.errors import CatalogueError, UnknownTrackError


def write_tone(path: Path, freq_hz: float = 220.0, seconds: float = 6.0, sr_hz: int = 22050) -> Path:
    t = np.arange(int(seconds * sr_hz)) / sr_hz
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32), sr_hz)
    return path


def test_minimal_catalogue_with_audio_elsewhere(tmp_path):
    audio = write_tone(tmp_path / "elsewhere" / "a.wav")
    write_tone(tmp_path / "cat" / "music" / "b.wav")
    (tmp_path / "cat").mkdir(exist_ok=True)
    (tmp_path / "cat" / "tracks.csv").write_text(f"track_id,path\nA,{audio}\nB,music/b.wav\n")
    catalogue = load_catalogue(tmp_path / "cat", check_audio=True)
    assert catalogue.track_ids == ["A", "B"]
    assert Path(catalogue.tracks["path"][1]) == (tmp_path / "cat" / "music" / "b.wav").resolve()
    assert not catalogue.has_labels("genre")
    assert list(catalogue.labels("genre")) == [None, None]
    assert catalogue.track("A")["path"] == str(audio)


def test_every_bad_row_is_listed_with_its_line(tmp_path):
    write_tone(tmp_path / "ok.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF not really audio")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "tracks.csv").write_text(
        "track_id,path,year,valence,arousal,emotion\n"
        "a,ok.wav,1999,5,5,\n"  # line 2: fine
        "a,ok.wav,1999,,,\n"  # line 3: duplicate id
        "b,missing.wav,,,,\n"  # line 4: missing file
        "c,corrupt.wav,,,,\n"  # line 5: unreadable
        "d,ok.wav,nineteen,,,\n"  # line 6: bad year
        "e,ok.wav,,12,3,\n"  # line 7: valence out of range
        "f,ok.wav,,,,ecstatic\n"  # line 8: unknown emotion
        "g,notes.txt,,,,\n"  # line 9: unsupported format
    )
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(tmp_path, check_audio=True)
    message = str(caught.value)
    assert "tracks.csv" in message
    for expected in (
        "line 3: duplicate track_id 'a' (first on line 2)",
        "line 4: audio file",
        "line 5:",
        "line 6: year 'nineteen' is not a number",
        "line 7: valence 12 is outside 1–9",
        "line 8: emotion 'ecstatic'",
        "line 9: notes.txt: unsupported format",
    ):
        assert expected in message, expected
    assert "\n  line 2:" not in message


def test_missing_file_or_columns_say_how_to_fix(tmp_path):
    with pytest.raises(CatalogueError, match="No tracks.csv.*songsim demo"):
        load_catalogue(tmp_path)
    (tmp_path / "tracks.csv").write_text("id,file\n1,a.wav\n")
    with pytest.raises(CatalogueError, match="lacks the required column.*track_id, path"):
        load_catalogue(tmp_path)
    (tmp_path / "tracks.csv").write_text("")
    with pytest.raises(CatalogueError, match="empty"):
        load_catalogue(tmp_path)


def test_emotion_is_derived_from_valence_and_arousal(tmp_path):
    write_tone(tmp_path / "a.wav")
    rows = "\n".join(f"t{i},a.wav,{v},{a}" for i, (v, a) in enumerate([(7, 7), (7, 3), (3, 7), (3, 3), (5, 5)]))
    (tmp_path / "tracks.csv").write_text("track_id,path,valence,arousal\n" + rows + "\n")
    catalogue = load_catalogue(tmp_path)
    assert list(catalogue.labels("emotion")) == ["happy", "calm", "angry", "sad", "sad"]
    assert thayer_quadrant(5.01, 5.0) == "calm"


def test_unknown_track_and_fingerprint_changes_with_audio(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "tracks.csv").write_text("track_id,path\na,a.wav\n")
    catalogue = load_catalogue(tmp_path)
    with pytest.raises(UnknownTrackError, match="'zzz'.*tracks.csv"):
        catalogue.row_of("zzz")
    before = catalogue.fingerprint()
    assert load_catalogue(tmp_path).fingerprint() == before
    write_tone(tmp_path / "a.wav", freq_hz=330.0)
    assert load_catalogue(tmp_path).fingerprint() != before


def test_a_tracks_csv_that_is_no_csv_is_refused_without_echoing_its_first_line(tmp_path):
    (tmp_path / "tracks.csv").write_text("root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(tmp_path)
    assert "is not a CSV file with a header row" in str(caught.value)
    assert "19000" not in str(caught.value) and "root:" not in str(caught.value)
