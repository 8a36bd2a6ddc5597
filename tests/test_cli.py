"""python -m songsim: query prints the documented JSON; errors go to stderr, exit 2."""

import json
import subprocess
import sys

import pytest


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "songsim", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_query_by_track_prints_json(built_catalogue):
    result = run_cli("query", str(built_catalogue), "--track", "pluck-01", "--json", "--exclude-artist")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["space"] == "handcrafted"
    assert payload["query"]["track_id"] == "pluck-01"
    assert len(payload["neighbours"]) == 5
    assert set(payload["neighbours"][0]) == {"track_id", "title", "artist", "score"}
    assert all(n["artist"] != payload["query"]["artist"] for n in payload["neighbours"])
    scores = [n["score"] for n in payload["neighbours"]]
    assert scores == sorted(scores, reverse=True)


def test_query_by_audio_file_and_euclidean(built_catalogue):
    audio = built_catalogue / "audio" / "drums-02.wav"
    result = run_cli("query", str(built_catalogue), "--audio", str(audio), "-k", "3", "--metric", "euclidean", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert len(payload["neighbours"]) == 3
    assert "drums-02" not in [n["track_id"] for n in payload["neighbours"]]  # identical audio = the query itself
    assert all(n["score"] <= 0 for n in payload["neighbours"])  # euclidean scores are −distance


def test_errors_are_one_line_on_stderr(built_catalogue, tmp_path):
    unknown = run_cli("query", str(built_catalogue), "--track", "no-such-id", "--json")
    assert unknown.returncode == 2
    assert "Unknown track id 'no-such-id'" in unknown.stderr and "Traceback" not in unknown.stderr
    missing = run_cli("build", str(tmp_path))
    assert missing.returncode == 2 and "No tracks.csv" in missing.stderr
    space = run_cli("query", str(built_catalogue), "--track", "pluck-01", "--space", "nope")
    assert space.returncode == 2 and "Unknown space 'nope'" in space.stderr


# --- query --audio (issue 13, problem 8) ------------------------------------------------------


def _uploads(catalogue) -> set[str]:
    folder = catalogue / ".songsim" / "uploads"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_query_by_audio_keeps_no_copy_of_the_file(built_catalogue, tmp_path):
    import shutil

    query = shutil.copy(built_catalogue / "audio" / "drums-02.wav", tmp_path / "mine.wav")
    before = _uploads(built_catalogue)
    result = run_cli("query", str(built_catalogue), "--audio", str(query), "-k", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["query"]["audio"] == str(query)
    assert _uploads(built_catalogue) == before  # searched where it lies, nothing kept


def test_query_audio_errors_name_the_file_and_the_fix(built_catalogue, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from songsim.cli import main

    sf.write(tmp_path / "one-hz.wav", 0.3 * np.sin(np.arange(1000) / 3.0), 1, subtype="PCM_16")
    t = np.arange(8 * 22_050) / 22_050
    sf.write(tmp_path / "loud.wav", (1e6 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22_050, subtype="FLOAT")
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(200))
    cases = {
        str(tmp_path): "is a folder: give the path of one audio file",
        str(tmp_path / "absent.wav"): "does not exist",
        str(tmp_path / "one-hz.wav"): "sample rate of 1 Hz",
        str(tmp_path / "loud.wav"): "far beyond full scale",
        str(tmp_path / "junk.wav"): "junk.wav: cannot be decoded as audio",
    }
    for audio, expected in cases.items():
        assert main(["query", str(built_catalogue), "--audio", audio]) == 2, audio
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and "object at 0x" not in err, err


def test_query_audio_checks_the_length_from_the_header_before_reading_the_file(built_catalogue, tmp_path, monkeypatch):
    import tracemalloc
    from pathlib import Path

    import numpy as np
    import soundfile as sf

    from songsim import query as query_module
    from songsim.catalogue import load_catalogue
    from songsim.errors import AudioTooLongError
    from songsim.query import file_upload

    long = tmp_path / "two-hours.wav"  # 25 min at 8 kHz, 8-bit: 12 MB, over the 20-min limit
    sf.write(long, np.full(25 * 60 * 8_000, 0.5), 8_000, subtype="PCM_U8")
    catalogue = load_catalogue(built_catalogue)

    def refuse(*args, **kwargs):
        raise AssertionError("read the audio before checking its header")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    monkeypatch.setattr(sf.SoundFile, "read", refuse)
    monkeypatch.setattr(query_module, "file_fingerprint", refuse)
    tracemalloc.start()
    try:
        with pytest.raises(AudioTooLongError, match="two-hours.wav"):
            file_upload(catalogue, long)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, peak  # nowhere near the file's 12 MB
