"""songsim.importers: every layout writes a tracks.csv that load_catalogue accepts, and every
file, row or value it cannot use is reported by name without failing the import.

The fake collections hold short real audio (6 s, written with soundfile): WAV, FLAC, OGG and,
where this libsndfile can encode it, MP3 (else FLAC under the same stem: the importer matches
audio by stem, whatever the extension).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from songsim.catalogue import load_catalogue
from songsim.cli import main
from songsim.errors import SongsimError
from songsim.importers import LAYOUTS, PROBLEMS_CSV, detect_layout, import_collection

SR_HZ = 22_050
MP3 = ".mp3" if "MP3" in sf.available_formats() else ".flac"


def write_song(path: Path, *, seconds: float = 6.0, f0_hz: float = 220.0, **tags: str) -> Path:
    """A ``seconds``-long mono tone at ``path`` (format from the extension), with ``tags``
    (title, artist, album, date, genre) written by libsndfile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR_HZ)) / SR_HZ
    signal = (0.3 * np.sin(2 * np.pi * f0_hz * t) * (0.8 + 0.2 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}[path.suffix.lower()]
    with sf.SoundFile(path, "w", SR_HZ, 1, format=fmt) as handle:
        for key, value in tags.items():
            setattr(handle, key, value)
        handle.write(signal)
    return path


def write_corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def problems_by_item(report) -> dict[str, str]:
    return {p.item: p.reason for p in report.problems}


# --------------------------------------------------------------------------------------------
# folder layouts


@pytest.fixture
def gtzan(tmp_path: Path) -> Path:
    """genres/<genre>/<genre>.000NN.wav with GTZAN's one corrupt file, jazz.00054.wav."""
    genres = tmp_path / "gtzan" / "genres"
    for genre in ("blues", "jazz"):
        for i in range(2):
            write_song(genres / genre / f"{genre}.{i:05d}.wav", f0_hz=200 + 50 * i)
    write_corrupt(genres / "jazz" / "jazz.00054.wav")
    (genres / "blues" / "._blues.00000.wav").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
    (genres / "input.mf").write_text("blues/blues.00000.wav\tblues\n")
    return genres


def test_gtzan_is_detected_and_the_corrupt_file_is_reported_by_name(tmp_path, gtzan):
    root = tmp_path / "catalogue"
    report = import_collection(root, gtzan)
    assert report.layout == "gtzan"
    catalogue = load_catalogue(root, check_audio=True)
    assert catalogue.track_ids == ["blues.00000", "blues.00001", "jazz.00000", "jazz.00001"]
    assert list(catalogue.labels("genre")) == ["blues", "blues", "jazz", "jazz"]
    assert list(catalogue.labels("title")) == catalogue.track_ids  # no tags: the stem
    assert Path(catalogue.tracks["path"][0]).is_relative_to(gtzan)  # nothing moved or copied
    assert pd.read_csv(root / "tracks.csv")["path"][0].startswith("/")  # audio outside root: absolute
    assert list(problems_by_item(report)) == ["jazz/jazz.00054.wav"]
    assert "cannot be decoded" in report.problems[0].reason
    assert report.problems[0].action == "skipped"
    written = pd.read_csv(root / PROBLEMS_CSV)
    assert written["item"].tolist() == ["jazz/jazz.00054.wav"]
    text = report.format()
    assert "Imported 4 tracks" in text and "jazz/jazz.00054.wav: cannot be decoded" in text


def test_folders_read_tags_from_every_format_and_report_unusable_files(tmp_path):
    root = tmp_path / "catalogue"
    audio = root / "music"  # audio inside the catalogue folder: relative paths
    write_song(audio / "rock" / "one.wav", title="One", artist="Ann", album="First", date="1999-04-01")
    write_song(audio / "rock" / "two.flac", title="Two", artist="Ann", album="First", date="1999")
    write_song(audio / "pop" / "three.ogg", title="Three", artist="Bo", date="2004")
    write_song(audio / "pop" / f"four{MP3}", title="Four", artist="Bo", album="Mp3 Album", date="2011-02-03")
    write_song(audio / "pop" / "short.wav", seconds=1.0)
    (audio / "pop" / "five.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    write_song(audio / "loose.wav", title="Loose")  # directly in the audio folder: no genre

    report = import_collection(root, audio, layout="folders")
    catalogue = load_catalogue(root, check_audio=True)
    tracks = catalogue.tracks.set_index("track_id")
    assert sorted(tracks.index) == ["loose", "pop/four", "pop/three", "rock/one", "rock/two"]
    assert tracks.loc["rock/one", ["title", "artist", "album", "year", "genre"]].tolist() == ["One", "Ann", "First", 1999, "rock"]
    assert tracks.loc["pop/four", ["title", "album", "year"]].tolist() == ["Four", "Mp3 Album", 2011]
    assert pd.isna(tracks.loc["pop/three", "album"]) and pd.isna(tracks.loc["loose", "genre"])
    assert pd.read_csv(root / "tracks.csv").set_index("track_id").loc["rock/one", "path"] == "music/rock/one.wav"
    reasons = problems_by_item(report)
    assert set(reasons) == {"pop/short.wav", "pop/five.m4a"}
    assert "shorter than the minimum" in reasons["pop/short.wav"]
    assert "ffmpeg" in reasons["pop/five.m4a"]


def test_tags_that_look_like_formulas_are_escaped_in_tracks_csv_and_read_back_as_written(tmp_path):
    """Issue 13: a tag such as ``=HYPERLINK(...)`` went verbatim into tracks.csv."""
    root, audio = tmp_path / "catalogue", tmp_path / "catalogue" / "music"
    write_song(audio / "rock" / "one.wav", title='=HYPERLINK("http://evil","x")', artist="@Ann", album="-Live-")
    write_song(audio / "rock" / "two.wav", title="'tis", artist="Bo")
    import_collection(root, audio, layout="folders")
    cells = [cell for row in csv.reader((root / "tracks.csv").open(newline="")) for cell in row]
    assert not [c for c in cells if c and c[0] in "=+-@\t\r"]
    tracks = load_catalogue(root).tracks.set_index("track_id")
    assert tracks.loc["rock/one", ["title", "artist", "album"]].tolist() == ['=HYPERLINK("http://evil","x")', "@Ann", "-Live-"]
    assert tracks.loc["rock/two", "title"] == "'tis"


def test_flat_folder_and_colliding_stems(tmp_path):
    audio = tmp_path / "audio"
    write_song(audio / "a.wav")
    write_song(audio / "a.flac", f0_hz=300)
    write_song(audio / "b.ogg")
    report = import_collection(tmp_path / "cat", audio)
    assert report.layout == "flat" and not report.problems
    catalogue = load_catalogue(tmp_path / "cat")
    assert catalogue.track_ids == ["a.flac", "a.wav", "b"]
    assert "genre" not in catalogue.tracks


def test_detect_layout():
    paths = [PurePosixPath(p) for p in ("blues/blues.00000.wav", "rock/rock.00012.au.wav")]
    assert detect_layout(paths[:1], []) == "gtzan"
    assert detect_layout(paths, []) == "folders"
    assert detect_layout([PurePosixPath("x.mp3"), PurePosixPath("rock/y.mp3")], []) == "flat"
    assert detect_layout([PurePosixPath("artist/album/y.mp3")], []) == "flat"
    assert detect_layout(paths, ["csv", "deam"]) == "deam"
    with pytest.raises(SongsimError, match="--metadata fma_metadata/tracks.csv"):
        detect_layout([PurePosixPath("000/000002.mp3")], [])


# --------------------------------------------------------------------------------------------
# FMA


FMA_HEADER = (
    ",album,album,artist,set,track,track,track,track\n"
    ",title,date_released,name,subset,date_created,genre_top,information,title\n"
)
FMA_ROWS = (
    '2,AWOL - A Way Of Life,2009-01-05 00:00:00,AWOL,small,2008-11-26 01:48:12,Hip-Hop,"<p>two\nlines</p>",Food\n'
    "5,AWOL - A Way Of Life,,AWOL,small,2008-11-26 01:48:14,,,This World\n"
    "10,Constant Hitmaker,2008-02-06 00:00:00,Kurt Vile,small,2008-11-25 17:49:06,Pop,,Freeway\n"
)


@pytest.mark.parametrize("third_row", [True, False], ids=["track_id-row", "two-rows"])
def test_fma_two_row_header(tmp_path, third_row):
    fma = tmp_path / "fma"
    (fma / "fma_metadata").mkdir(parents=True)
    metadata = fma / "fma_metadata" / "tracks.csv"
    metadata.write_text(FMA_HEADER + ("track_id,,,,,,,,\n" if third_row else "") + FMA_ROWS)
    write_song(fma / "fma_small" / "000" / f"000002{MP3}")
    write_song(fma / "fma_small" / "000" / f"000005{MP3}", f0_hz=330, title="Tag title", artist="Tag artist")

    report = import_collection(tmp_path / "cat", fma / "fma_small", metadata=[metadata])
    assert report.layout == "fma"
    tracks = load_catalogue(tmp_path / "cat", check_audio=True).tracks.set_index("track_id")
    assert list(tracks.index) == ["2", "5"]
    assert tracks.loc["2", ["title", "artist", "album", "year", "genre"]].tolist() == [
        "Food", "AWOL", "AWOL - A Way Of Life", 2009, "Hip-Hop"]
    assert tracks.loc["5", "title"] == "This World"  # the CSV wins over the tags
    assert tracks.loc["5", "year"] == 2008  # no release date: the upload date
    assert pd.isna(tracks.loc["5", "genre"])  # missing labels are normal
    assert problems_by_item(report) == {"tracks.csv track_id=10": f"no audio file named '000010' under {(fma / 'fma_small').resolve()}"}


def test_fma_layout_needs_an_fma_file(tmp_path):
    write_song(tmp_path / "audio" / "000" / "000002.wav")
    plain = tmp_path / "plain.csv"
    plain.write_text("track_id,title\n2,x\n")
    with pytest.raises(SongsimError, match="Layout fma needs an FMA tracks.csv"):
        import_collection(tmp_path / "cat", tmp_path / "audio", metadata=[plain], layout="fma")


# --------------------------------------------------------------------------------------------
# DEAM


def test_deam_spaced_headers_several_files_and_out_of_range_values(tmp_path):
    audio = tmp_path / "DEAM" / "MEMD_audio"
    for song in (2, 3, 5):
        write_song(audio / f"{song}{MP3}", f0_hz=150 + 40 * song)
    annotations = tmp_path / "static_annotations_averaged_songs_1_2000.csv"
    annotations.write_text(
        "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n"
        "2, 3.1, 0.94, 3, 0.63\n"
        "3, 6.5, 1.2, 7.25, 1.1\n"
        "4, 5, 1, 5, 1\n"
        "5, 12, 1, 4.4, 1\n"
    )
    info = tmp_path / "metadata_2014.csv"
    info.write_text("Id,Artist,Track,Genre\n2,Some Band,Tune Two,Rock\n3,Other Band,Tune Three,Pop\n")

    report = import_collection(tmp_path / "cat", audio, metadata=[annotations, info])
    assert report.layout == "deam"
    tracks = load_catalogue(tmp_path / "cat").tracks.set_index("track_id")
    assert tracks.loc["2", ["valence", "arousal", "emotion", "artist", "title", "genre"]].tolist() == [
        3.1, 3.0, "sad", "Some Band", "Tune Two", "Rock"]
    assert tracks.loc["3", "emotion"] == "happy"
    assert np.isnan(tracks.loc["5", "valence"]) and tracks.loc["5", "arousal"] == 4.4
    assert tracks.loc["5", "title"] == "5"  # no metadata row, no tags: the file stem
    problems = {p.item: p for p in report.problems}
    assert problems[f"{annotations.name} song_id=4"].kind == "no audio for row"
    dropped = problems[f"{annotations.name} song_id=5"]
    assert dropped.action == "value dropped" and dropped.reason == "valence 12 is outside 1–9"
    assert f"{annotations.name}: valence read on the 1–9 (DEAM) scale, kept as is" in report.notes


# --------------------------------------------------------------------------------------------
# generic CSV


def test_spotify_style_csv_by_file_name(tmp_path):
    audio = tmp_path / "audio"
    write_song(audio / "songs" / "alpha.wav")
    write_song(audio / "songs" / "beta.flac", f0_hz=300)
    write_song(audio / "songs" / "gamma.ogg", f0_hz=400, title="Gamma tag", artist="Tag Artist")
    metadata = tmp_path / "features.csv"
    metadata.write_text(
        "Filename;Track_Name;Artist_Name;Release_Date;Playlist_Genre;Danceability;Energy;Valence;Tempo;Mode;Popularity\n"
        "alpha.wav;Alpha;Ann;2019-06-14;pop;0.8;0.7;0.75;120.5;1;55\n"
        "songs/beta.flac;Beta;Bo;2012;edm;0.6;0.9;0.25;0;0;60\n"
        "missing.mp3;Gone;Cy;2001;rock;0.1;0.2;0.3;90;1;1\n"
    )
    report = import_collection(tmp_path / "cat", audio, metadata=[metadata])
    assert report.layout == "csv"
    tracks = load_catalogue(tmp_path / "cat").tracks.set_index("track_id")
    assert sorted(tracks.index) == ["songs/alpha", "songs/beta", "songs/gamma"]
    alpha = tracks.loc["songs/alpha"]
    assert [alpha.title, alpha.artist, alpha.year, alpha.genre] == ["Alpha", "Ann", 2019, "pop"]
    assert alpha.valence == pytest.approx(7.0)  # Spotify 0.75 -> 1 + 8 * 0.75 on the DEAM scale
    assert alpha[["danceability", "tempo", "mode"]].tolist() == [0.8, 120.5, 1.0]
    assert tracks.loc["songs/beta", "valence"] == pytest.approx(3.0)
    assert np.isnan(tracks.loc["songs/beta", "tempo"])  # 0 bpm is out of range: dropped
    assert tracks.loc["songs/gamma", ["title", "artist"]].tolist() == ["Gamma tag", "Tag Artist"]
    problems = {p.item: p for p in report.problems}
    assert problems["features.csv Filename=missing.mp3"].kind == "no audio for row"
    assert problems["features.csv Filename=songs/beta.flac"].reason == "tempo 0 is outside 1–400"
    notes = " ".join(report.notes)
    assert "features.csv: valence read on a 0–1 scale (Spotify-style), mapped to 1–9 as 1 + 8·v" in notes and "Popularity" in notes
    assert "1 audio files have no metadata row" in notes


def test_csv_keyed_by_id_with_a_bipolar_scale_and_bad_values(tmp_path):
    audio = tmp_path / "audio"
    for name in ("t1", "t2", "t3"):
        write_song(audio / f"{name}.wav")
    metadata = tmp_path / "labels.csv"
    metadata.write_text(
        "ID,valence,arousal,year,emotion\n"
        "t1,-0.5,0.5,1987,sad\n"
        "t2,0.25,-1,nineteen,furious\n"
        "t3,,,,\n"
        "t1,0,0,2000,happy\n"
    )
    report = import_collection(tmp_path / "cat", audio, metadata=[metadata], layout="csv")
    tracks = load_catalogue(tmp_path / "cat").tracks.set_index("track_id")
    assert tracks.loc["t1", ["valence", "arousal", "year", "emotion"]].tolist() == [3.0, 7.0, 1987, "sad"]
    assert tracks.loc["t2", ["valence", "arousal", "emotion"]].tolist() == [6.0, 1.0, "calm"]  # emotion derived
    assert pd.isna(tracks.loc["t2", "year"]) and pd.isna(tracks.loc["t3", "valence"])
    reasons = sorted((p.item, p.kind, p.reason) for p in report.problems)
    assert reasons == [
        ("labels.csv ID=t1", "duplicate", "ID 't1' appears again in labels.csv; the first row is kept"),
        ("labels.csv ID=t2", "bad value", "emotion 'furious' is not one of happy, calm, angry, sad"),
        ("labels.csv ID=t2", "bad value", "year 'nineteen' is not a year"),
    ]


def test_csv_without_an_id_column_is_a_clear_error(tmp_path):
    write_song(tmp_path / "audio" / "a.wav")
    metadata = tmp_path / "m.csv"
    metadata.write_text("title,artist\nA,B\n")
    with pytest.raises(SongsimError, match="no track id or file column"):
        import_collection(tmp_path / "cat", tmp_path / "audio", metadata=[metadata])


# --------------------------------------------------------------------------------------------
# failures and the CLI


def test_nothing_importable_is_an_error_and_writes_nothing(tmp_path):
    write_corrupt(tmp_path / "audio" / "bad.wav")
    with pytest.raises(SongsimError, match=r"No track could be imported .*1 unreadable audio"):
        import_collection(tmp_path / "cat", tmp_path / "audio")
    assert not (tmp_path / "cat" / "tracks.csv").exists()
    with pytest.raises(SongsimError, match="does not exist"):
        import_collection(tmp_path / "cat", tmp_path / "nowhere")


def test_existing_catalogue_needs_replace(tmp_path):
    write_song(tmp_path / "audio" / "a.wav")
    import_collection(tmp_path / "cat", tmp_path / "audio")
    with pytest.raises(SongsimError, match="--replace"):
        import_collection(tmp_path / "cat", tmp_path / "audio")
    write_song(tmp_path / "audio" / "b.wav")
    assert import_collection(tmp_path / "cat", tmp_path / "audio", replace=True).n_tracks == 2


def test_cli_import(tmp_path, gtzan):
    run = [sys.executable, "-m", "songsim", "import", str(tmp_path / "cat"), "--audio", str(gtzan)]
    result = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Imported 4 tracks" in result.stdout and "layout gtzan" in result.stdout
    assert "jazz/jazz.00054.wav: cannot be decoded" in result.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = subprocess.run([*run[:4], str(tmp_path / "other"), "--audio", str(empty)], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and "No track could be imported" in failed.stderr and "Traceback" not in failed.stderr


def test_cli_help_names_every_layout_and_a_wrong_one_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    import_help = capsys.readouterr().out
    assert all(layout in import_help for layout in LAYOUTS)
    write_song(tmp_path / "audio" / "a.wav")
    assert main(["import", str(tmp_path / "cat"), "--audio", str(tmp_path / "audio"), "--layout", "itunes"]) == 2
    assert "Unknown layout 'itunes'; use one of auto, folders" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# the allowed roots (issue 13, problem 1): what the app passes as ``roots``


SHADOW = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"


def test_a_file_that_is_not_a_csv_is_refused_without_echoing_its_content(tmp_path):
    write_song(tmp_path / "audio" / "a.wav")
    shadow = tmp_path / "shadow"
    shadow.write_text(SHADOW)
    with pytest.raises(SongsimError) as caught:
        import_collection(tmp_path / "cat", tmp_path / "audio", metadata=[shadow])
    assert "is not a CSV file with a header row" in str(caught.value)
    assert "root" not in str(caught.value).replace(str(tmp_path), "") and "19000" not in str(caught.value)
    binary = tmp_path / "blob.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SongsimError) as caught:
        import_collection(tmp_path / "cat", tmp_path / "audio", metadata=[binary])
    assert "\x01" not in str(caught.value) and "\xff" not in str(caught.value)
    assert not (tmp_path / "cat").exists()


def test_with_roots_nothing_outside_them_is_read_or_created(tmp_path):
    from songsim.errors import OutsideRootsError

    inside, outside = tmp_path / "inside", tmp_path / "outside"
    write_song(inside / "audio" / "a.wav")
    write_song(outside / "audio" / "b.wav")
    (outside / "shadow").write_text(SHADOW)
    roots = [inside]
    cases = [
        {"root": outside / "cat", "audio_dir": inside / "audio"},
        {"root": Path("/etc/songsim-pwn"), "audio_dir": inside / "audio"},
        {"root": inside / "cat", "audio_dir": outside / "audio"},
        {"root": inside / "cat", "audio_dir": inside / "audio", "metadata": [outside / "shadow"]},
        {"root": inside / ".." / "outside" / "cat", "audio_dir": inside / "audio"},
    ]
    (inside / "link").symlink_to(outside)
    cases.append({"root": inside / "link" / "cat", "audio_dir": inside / "audio"})
    for case in cases:
        with pytest.raises(OutsideRootsError, match="is outside the folders this app may read and write") as caught:
            import_collection(**case, roots=roots)
        assert "19000" not in str(caught.value)
    assert not Path("/etc/songsim-pwn").exists() and not (outside / "cat").exists() and not (inside / "cat").exists()

    listing = inside / "files.csv"  # an absolute audio path outside the roots is skipped, not probed
    listing.write_text(f"file,title\na.wav,A\n{outside / 'audio' / 'b.wav'},B\n")
    report = import_collection(inside / "cat", inside / "audio", metadata=[listing], roots=roots)
    assert report.n_tracks == 1
    assert any("outside the folders this app may read" in p.reason for p in report.problems), report.problems


def test_a_catalogue_outside_the_roots_is_not_registered(tmp_path, monkeypatch):
    from songsim.catalogues import add_catalogue, list_catalogues
    from songsim.config import allowed_roots
    from songsim.errors import OutsideRootsError

    monkeypatch.setenv("SONGSIM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SONGSIM_ROOTS", raising=False)
    assert allowed_roots() == [Path.home().resolve(), (tmp_path / "home").resolve()]
    monkeypatch.setenv("SONGSIM_ROOTS", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    assert allowed_roots() == [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(OutsideRootsError):
        add_catalogue("/etc", roots=allowed_roots())
    assert add_catalogue(tmp_path / "b" / "cat", roots=allowed_roots()).path == tmp_path / "b" / "cat"
    assert [k.path for k in list_catalogues()][1:] == [tmp_path / "b" / "cat"]
