"""python -m songsim: query prints the documented JSON; errors go to stderr, exit 2."""

import json
import subprocess
import sys


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
