"""Imported spaces: a researcher's own vectors, validated, stored, and judged like any space."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from explore_app import open_app

from songsim.build import build
from songsim.catalogue import load_catalogue
from songsim.cli import main
from songsim.errors import ImportedSpaceError, SongsimError
from songsim.evaluate import evaluate_catalogue
from songsim.query import search, store_upload
from songsim.spaces.store import built_space_names, import_vectors, load_built_space, map_path, space_dir
from songsim.stages import stage_states
from songsim.studies.report import compute_report
from songsim.studies.study import add_space, create_study

NAME = "mine"


def own_vectors(root: Path, *, dim: int = 6, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """One vector per track: the handcrafted space's first components plus noise."""
    catalogue = load_catalogue(root)
    base = load_built_space(catalogue, "handcrafted").vectors_[:, :dim].astype(np.float64)
    return catalogue.track_ids, base + 0.01 * np.random.default_rng(seed).standard_normal(base.shape)


def stored(root: Path) -> np.ndarray:
    return load_built_space(load_catalogue(root), NAME).vectors_


def test_every_format_gives_the_same_vectors(catalogue_dir, tmp_path):
    ids, vectors = own_vectors(catalogue_dir)
    expected = vectors.astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    import_vectors(catalogue_dir, name=NAME, vectors=tmp_path / "v.npy", ids=tmp_path / "ids.txt")
    np.testing.assert_array_equal(stored(catalogue_dir), expected)

    np.savez(tmp_path / "v.npz", ids=np.array(ids), vectors=vectors)
    table = pd.DataFrame(vectors, columns=[f"d{i}" for i in range(vectors.shape[1])])
    table.insert(0, "track_id", ids)
    table.to_csv(tmp_path / "v.csv", index=False)
    table.to_parquet(tmp_path / "v.parquet")
    (tmp_path / "vectors.tsv").write_text("\n".join("\t".join(repr(float(x)) for x in row) for row in vectors) + "\n")
    (tmp_path / "labels.tsv").write_text("\n".join(ids) + "\n")  # Projector metadata: one column, no header
    (tmp_path / "meta.tsv").write_text("title\ttrack_id\n" + "\n".join(f"t{i}\t{t}" for i, t in enumerate(ids)) + "\n")
    for vectors_file, ids_file in (("v.npz", None), ("v.csv", None), ("v.parquet", None), ("vectors.tsv", "labels.tsv"), ("vectors.tsv", "meta.tsv")):
        import_vectors(catalogue_dir, name=NAME, vectors=tmp_path / vectors_file, ids=None if ids_file is None else tmp_path / ids_file)
        np.testing.assert_allclose(stored(catalogue_dir), expected, rtol=1e-6, err_msg=vectors_file)


def test_ids_may_be_audio_paths(catalogue_dir, tmp_path):
    catalogue = load_catalogue(catalogue_dir)
    _, vectors = own_vectors(catalogue_dir)
    relative = [Path(p).relative_to(catalogue_dir).as_posix() for p in catalogue.tracks["path"]]
    absolute = [str(p) for p in catalogue.tracks["path"]]
    names = [r if i % 2 else a for i, (r, a) in enumerate(zip(relative, absolute))]
    np.savez(tmp_path / "v.npz", ids=np.array(names), vectors=vectors)
    import_vectors(catalogue_dir, name=NAME, vectors=tmp_path / "v.npz")
    np.testing.assert_allclose(stored(catalogue_dir), vectors.astype(np.float32))


def _write_csv(path: Path, ids: list[str], vectors: np.ndarray) -> Path:
    table = pd.DataFrame(vectors, columns=[f"d{i}" for i in range(vectors.shape[1])])
    table.insert(0, "track_id", ids)
    table.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unknown", r"row 3 'no-such-track'.*Use the track_id"),
        ("duplicate", r"names a track twice: rows 1 and 2"),
        ("nan", r"rows 4 hold NaN or infinite values"),
        ("inf", r"rows 2 hold NaN or infinite values"),
        ("ragged-tsv", r"lines 2 have another number of values"),
        ("one-dimensional", r"shape \(24,\), not \(n_tracks, dim\)"),
        ("fewer-ids", r"names 23 tracks for 24 vectors"),
        ("no-ids", r"holds no track ids.*--ids FILE"),
        ("format", r"format '.json' is not supported"),
        ("missing", r"does not exist"),
        ("text-in-csv", r"columns d1 are not numeric"),
        ("no-id-column", r"has no track_id / id / path column"),
    ],
)
def test_a_malformed_file_is_refused_by_name_and_row_and_nothing_is_stored(catalogue_dir, tmp_path, case, expected):
    ids, vectors = own_vectors(catalogue_dir)
    kwargs: dict = {}
    if case == "unknown":
        path = _write_csv(tmp_path / "bad.csv", [*ids[:2], "no-such-track", *ids[3:]], vectors)
    elif case == "duplicate":
        path = _write_csv(tmp_path / "bad.csv", [ids[0], *ids[:-1]], vectors)
    elif case in ("nan", "inf"):
        vectors[3 if case == "nan" else 1, 2] = np.nan if case == "nan" else np.inf
        path = _write_csv(tmp_path / "bad.csv", ids, vectors)
    elif case == "ragged-tsv":
        lines = ["\t".join(map(str, row)) for row in vectors]
        lines[1] += "\t0.5"
        path = tmp_path / "bad.tsv"
        path.write_text("\n".join(lines) + "\n")
        (tmp_path / "ids.tsv").write_text("\n".join(ids) + "\n")
        kwargs["ids"] = tmp_path / "ids.tsv"
    elif case == "one-dimensional":
        path = tmp_path / "bad.npy"
        np.save(path, vectors[:, 0])
        (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
        kwargs["ids"] = tmp_path / "ids.txt"
    elif case == "fewer-ids":
        path = tmp_path / "bad.npy"
        np.save(path, vectors)
        (tmp_path / "ids.txt").write_text("\n".join(ids[:-1]) + "\n")
        kwargs["ids"] = tmp_path / "ids.txt"
    elif case == "no-ids":
        path = tmp_path / "bad.npy"
        np.save(path, vectors)
    elif case == "format":
        path = tmp_path / "bad.json"
        path.write_text("{}")
    elif case == "missing":
        path = tmp_path / "nowhere.csv"
    elif case == "text-in-csv":
        path = _write_csv(tmp_path / "bad.csv", ids, vectors)
        table = pd.read_csv(path)
        table["d1"] = table["d1"].astype(str)
        table.loc[5, "d1"] = "oops"
        table.to_csv(path, index=False)
    else:
        path = tmp_path / "bad.csv"
        pd.DataFrame(vectors).to_csv(path, index=False)
    with pytest.raises(ImportedSpaceError, match=expected) as caught:
        import_vectors(catalogue_dir, name=NAME, vectors=path, **kwargs)
    assert Path(kwargs.get("ids", path)).name in str(caught.value) or path.name in str(caught.value)
    assert not space_dir(load_catalogue(catalogue_dir).derived_dir, NAME).exists()


def test_the_cli_reports_a_bad_file_in_one_line_and_a_bad_name(catalogue_dir, tmp_path, capsys):
    ids, vectors = own_vectors(catalogue_dir)
    path = _write_csv(tmp_path / "bad.csv", [*ids[:-1], "ghost"], vectors)
    assert main(["space", "import", str(catalogue_dir), "--name", NAME, "--vectors", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "bad.csv" in error and "row 24 'ghost'" in error
    good = _write_csv(tmp_path / "good.csv", ids, vectors)
    assert main(["space", "import", str(catalogue_dir), "--name", "handcrafted", "--vectors", str(good)]) == 2
    assert "built-in or plug-in space" in capsys.readouterr().err
    assert main(["space", "import", str(catalogue_dir), "--name", "Bad Name", "--vectors", str(good)]) == 2
    assert "not usable" in capsys.readouterr().err


def test_a_partial_file_is_listed_and_its_missing_tracks_are_never_searched(catalogue_dir, tmp_path, capsys):
    ids, vectors = own_vectors(catalogue_dir)
    path = _write_csv(tmp_path / "part.csv", ids[3:], vectors[3:])
    assert main(["space", "import", str(catalogue_dir), "--name", NAME, "--vectors", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["missing"] == ids[:3] and report["n_covered"] == len(ids) - 3
    catalogue = load_catalogue(catalogue_dir)
    for track_id in ids[3:]:
        assert not set(search(catalogue, NAME, track_id=track_id, k=10).track_ids(catalogue)) & set(ids[:3])
    with pytest.raises(SongsimError, match=f"no vector for {ids[0]}"):
        search(catalogue, NAME, track_id=ids[0])
    upload = store_upload(catalogue, Path(catalogue.tracks["path"].iat[5]).read_bytes(), "song.wav")
    with pytest.raises(SongsimError, match="cannot embed a new song.*handcrafted"):
        search(catalogue, NAME, upload=upload)

    build(catalogue_dir, spaces=[NAME], map_methods=("pca", "umap"), n_jobs=1)
    from songsim.maps import load_map

    coords = load_map(map_path(catalogue, NAME, "umap")).coords_
    assert np.isnan(coords[:3]).all() and np.isfinite(coords[3:]).all()
    figures = evaluate_catalogue(catalogue_dir, spaces=[NAME, "handcrafted"])["spaces"]
    assert figures[NAME]["n_queries"]["genre_p@5"] == len(ids) - 3
    assert figures["handcrafted"]["n_queries"]["genre_p@5"] == len(ids)


def test_an_imported_space_goes_through_studies_add_space_and_the_report(catalogue_dir, tmp_path):
    ids, vectors = own_vectors(catalogue_dir)
    import_vectors(catalogue_dir, name=NAME, vectors=_write_csv(tmp_path / "part.csv", ids[2:], vectors[2:]), description="my model")
    assert NAME in built_space_names(load_catalogue(catalogue_dir))
    study = create_study(catalogue_dir, "both", spaces=["handcrafted", NAME], n_queries=8, k=3)
    assert not {q.query_id for q in study.queries} & set(ids[:2])  # only tracks every space covers
    assert all(NAME in q.runs for q in study.queries)

    first = create_study(catalogue_dir, "later", spaces=["handcrafted"], query_ids=[ids[0], ids[5]], k=3)
    added, n_new = add_space(catalogue_dir, first.name, NAME)
    assert NAME not in added.query(ids[0]).runs and NAME in added.query(ids[5]).runs  # no vector: no run
    assert n_new == len(set(added.query(ids[5]).runs[NAME]) - set(first.query(ids[5]).runs["handcrafted"]))
    report = compute_report(catalogue_dir, "later")
    assert NAME in report.as_dict()["spaces"]

    # a changed file makes the maps stale; the study keeps the runs it stored
    build(catalogue_dir, spaces=[NAME], map_methods=("pca",), n_jobs=1)
    states = {s.stage: s.state for s in stage_states(catalogue_dir, map_methods=("pca",))}
    assert states[f"space:{NAME}"] == "done" and states[f"map:{NAME}:pca"] == "done"
    import_vectors(catalogue_dir, name=NAME, vectors=_write_csv(tmp_path / "changed.csv", ids, vectors[::-1].copy()))
    states = {s.stage: s.state for s in stage_states(catalogue_dir, map_methods=("pca",))}
    assert states[f"map:{NAME}:pca"] == "stale"
    assert compute_report(catalogue_dir, "later").as_dict()["spaces"] == report.as_dict()["spaces"]


def test_explore_serves_an_imported_space_and_says_it_cannot_embed_uploads(catalogue_dir, tmp_path, monkeypatch):
    ids, vectors = own_vectors(catalogue_dir)
    import_vectors(catalogue_dir, name=NAME, vectors=_write_csv(tmp_path / "v.csv", ids, vectors), metric="euclidean")
    at = open_app(catalogue_dir, monkeypatch, space=NAME, method="pca")
    assert any(f"map of **{NAME}**" in c.value for c in at.caption)
    assert at.radio(key=f"metric:{NAME}").value == "euclidean"
    assert len(at.get("audio")) == 6
    audio = Path(load_catalogue(catalogue_dir).tracks["path"].iat[4]).read_bytes()
    at.file_uploader[0].set_value(("mine.wav", audio, "audio/wav")).run()
    assert at.error and "cannot embed a new song" in at.error[0].value and "handcrafted" in at.error[0].value
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("space")
    assert table.loc[NAME, "state"] == "done" and "imported from" in table.loc[NAME, "detail"]


def test_the_models_page_imports_vectors_and_names_a_bad_file(catalogue_dir, tmp_path, monkeypatch):
    import io

    ids, vectors = own_vectors(catalogue_dir)
    at = open_app(catalogue_dir, monkeypatch)
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception

    bad = io.StringIO()
    pd.DataFrame({"track_id": ["ghost", *ids[1:]], "d0": vectors[:, 0]}).to_csv(bad, index=False)
    at.text_input[0].set_value("from-browser")
    at.file_uploader[0].set_value(("mine.csv", bad.getvalue().encode(), "text/csv"))
    at.button[-1].click().run()
    assert at.error and at.error[0].value.startswith("mine.csv: ") and "row 1 'ghost'" in at.error[0].value
    assert "songsim-import-" not in at.error[0].value  # never the server's temporary path
    assert "from-browser" not in built_space_names(load_catalogue(catalogue_dir))

    buffer = io.BytesIO()
    np.savez(buffer, ids=np.array(ids[2:]), vectors=vectors[2:])
    at.file_uploader[0].set_value(("mine.npz", buffer.getvalue(), "application/octet-stream"))
    at.button[-1].click().run()
    assert not at.exception, at.exception
    assert any("Imported **from-browser**" in s.value for s in at.success)
    assert any(ids[0] in i.value and ids[1] in i.value for i in at.info)
    table = at.dataframe[0].value.set_index("space")
    assert table.loc["from-browser", "state"] == "done" and "mine.npz" in table.loc["from-browser", "detail"]
