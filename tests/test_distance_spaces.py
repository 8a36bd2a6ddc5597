"""Distance-based spaces: a MIREX-style distance matrix imported, searched, mapped, evaluated and
judged like any space (songsim.spaces.imported "Distance matrices", neighbours.PrecomputedIndex,
maps "Spaces that give distances")."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from explore_app import open_app
from scipy.spatial import procrustes
from sklearn.manifold import trustworthiness as sk_trustworthiness

from songsim.build import build
from songsim.catalogue import load_catalogue
from songsim.cli import main
from songsim.errors import ImportedSpaceError, SongsimError
from songsim.evaluate import evaluate_catalogue, label_precision
from songsim.maps import ClassicalMDS, fit_map, load_map, trustworthiness
from songsim.neighbours import (
    PRECOMPUTED,
    HubnessReducedIndex,
    PrecomputedIndex,
    make_index,
)
from songsim.query import resolve_metric, search
from songsim.spaces.store import (
    built_space_names,
    import_distances,
    load_built_space,
    map_path,
    space_dir,
    space_info,
)

NAME = "mirex"


def euclidean_matrix(root: Path) -> tuple[list[str], np.ndarray]:
    """The handcrafted space's L2 distances between every pair of tracks (tracks.csv order)."""
    catalogue = load_catalogue(root)
    vectors = load_built_space(catalogue, "handcrafted").vectors_.astype(np.float64)
    return catalogue.track_ids, np.linalg.norm(vectors[:, None] - vectors[None], axis=2)


def matrix_lines(ids: list[str], matrix: np.ndarray, *, corner: str = "Q/R", columns: list[str] | None = None) -> list[str]:
    lines = ["\t".join([corner, *(columns or ids)])]
    lines += ["\t".join([name, *(repr(float(x)) for x in row)]) for name, row in zip(ids, matrix)]
    return lines


def write_matrix(path: Path, ids: list[str], matrix: np.ndarray, **kwargs) -> Path:
    path.write_text("\n".join(matrix_lines(ids, matrix, **kwargs)) + "\n")
    return path


# --------------------------------------------------------------------------------------
# the index
# --------------------------------------------------------------------------------------
def test_precomputed_index_against_hand_computed_answers():
    distances = np.array(
        [[0, 3, 1, 2, 2], [3, 0, 2, 2, 9], [1, 2, 0, 5, 1], [4, 1, 1, 0, 7], [2, 2, 2, 2, 0]], dtype=np.float32
    )  # row = query, asymmetric (row 3 differs from column 3)
    index = make_index(distances, metric=PRECOMPUTED)
    assert isinstance(index, PrecomputedIndex) and index.metric == PRECOMPUTED and index.dim == 5
    found = index.query_row(0, k=3)
    assert found.indices.tolist() == [2, 3, 4] and found.scores.tolist() == [-1, -2, -2]  # tie 3/4: lower row first
    assert found.distances.tolist() == [1, 2, 2]
    assert index.query_row(3, k=2).indices.tolist() == [1, 2]  # row 3's own distances, not column 3
    assert index.query_row(4, k=4).indices.tolist() == [0, 1, 2, 3]  # all tied: by row
    mask = np.zeros(5, dtype=bool)
    mask[2] = True
    assert index.query_row(0, k=2, exclude=mask).indices.tolist() == [3, 4]
    upload = np.array([0.5, 0.2, 0.9, 0.2, 3.0])  # an upload: its distances to every track
    assert index.query(upload, k=3).as_pairs() == [(1, pytest.approx(-0.2)), (3, pytest.approx(-0.2)), (0, -0.5)]
    with pytest.raises(SongsimError, match=r"shape \(5,\)"):
        index.query(np.ones(4), k=1)
    with pytest.raises(SongsimError, match="square"):
        PrecomputedIndex(np.ones((4, 3), dtype=np.float32))
    assert index.row(1).flags.writeable is False  # a view of the matrix, never copied nor changed


def test_hubness_reduction_over_distances_equals_it_over_the_vectors():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((40, 5)).astype(np.float32)
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=2).astype(np.float32)
    for method in ("mp-gauss", "ls"):
        on_vectors = HubnessReducedIndex(vectors, metric="euclidean", method=method)
        on_distances = HubnessReducedIndex(distances, metric=PRECOMPUTED, method=method)
        for row in (0, 7, 39):
            a, b = on_vectors.query_row(row, k=5), on_distances.query_row(row, k=5)
            assert a.indices.tolist() == b.indices.tolist(), method
            np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    # empirical MP (a step function, so float32 rounding of the vectors' distances may move a
    # count): against the formula, 1 − P(D_x > d)·P(D_y > d) over each song's other songs
    mp = HubnessReducedIndex(distances, metric=PRECOMPUTED, method="mp")
    x = 7
    reduced = mp.reduced_distances(distances[x])
    for y in (0, 12, 39):
        d = distances[x, y]
        beyond = [np.mean(np.delete(distances[s], s) > d) for s in (x, y)]
        assert reduced[y] == pytest.approx(1 - beyond[0] * beyond[1])
    # rows without a vector are left out of the statistics: the same answers as without them
    covered = np.ones(40, dtype=bool)
    covered[:4] = False
    padded = distances.copy()
    padded[:4, :] = padded[:, :4] = 1e3  # a filler that would shift every mean and σ
    partial = HubnessReducedIndex(padded, metric=PRECOMPUTED, method="mp-gauss", covered=covered)
    alone = HubnessReducedIndex(distances[4:, 4:], metric=PRECOMPUTED, method="mp-gauss")
    exclude = ~covered
    assert (partial.query_row(10, k=5, exclude=exclude).indices - 4).tolist() == alone.query_row(6, k=5).indices.tolist()


# --------------------------------------------------------------------------------------
# maps
# --------------------------------------------------------------------------------------
def planar_points(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(centre, 0.4, size=(n // 4, 2)) for centre in ((0, 0), (4, 0), (0, 4), (4, 4))])


def test_classical_mds_recovers_a_planar_configuration_and_places_new_points_by_gower():
    points = planar_points()
    distances = np.linalg.norm(points[:, None] - points[None], axis=2)
    fitted = fit_map(distances, method="pca", metric=PRECOMPUTED)
    assert fitted.label == "classical MDS"
    _, _, disparity = procrustes(points, fitted.coords_)
    assert disparity < 1e-10  # the same configuration up to rotation, reflection, translation and scale
    # scale too: MDS keeps distances, so pairwise distances of the map equal the given ones
    mapped = np.linalg.norm(fitted.coords_[:, None] - fitted.coords_[None], axis=2)
    np.testing.assert_allclose(mapped, distances, atol=1e-4)
    # Gower's add-a-point: a point left out of the fit lands where it belongs
    mds = ClassicalMDS(distances[:-1, :-1])
    placed = mds.transform(distances[-1:, :-1])
    full = np.vstack([mds.coords_, placed])
    _, _, disparity = procrustes(points, full)
    assert disparity < 1e-10
    np.testing.assert_allclose(mds.transform(distances[:3, :-1]), mds.coords_[:3], atol=1e-9)  # fitted rows: themselves
    # trustworthiness uses the given distances: as scikit-learn's on the points
    expected = sk_trustworthiness(points, fitted.coords_, n_neighbors=5)
    assert fitted.trustworthiness_ == pytest.approx(expected)
    assert trustworthiness(distances, fitted.coords_, metric=PRECOMPUTED) == pytest.approx(expected)


def test_a_partial_distance_map_takes_full_distance_rows():
    points = planar_points(24)
    distances = np.linalg.norm(points[:, None] - points[None], axis=2)
    covered = np.arange(3, 24)
    fitted = fit_map(distances[covered], method="pca", metric=PRECOMPUTED, columns=covered)
    assert fitted.coords_.shape == (21, 2) and fitted.n_features_in_ == 24
    np.testing.assert_allclose(fitted.transform(distances[5]), fitted.coords_[2:3], atol=1e-5)
    with pytest.raises(SongsimError, match="negative"):
        fit_map(-distances, method="pca", metric=PRECOMPUTED)
    # a large space: fitted on a sample of rows (their distances to each other), the rest placed
    sampled = fit_map(distances[covered], method="tsne", metric=PRECOMPUTED, columns=covered, sample_size=12)
    assert sampled.sample_rows_.size == 12 and sampled.coords_.shape == (21, 2) and np.isfinite(sampled.coords_).all()
    assert sampled.transform(distances[:2]).shape == (2, 2)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_umap_and_tsne_fit_distances_and_place_new_points(method):
    points = planar_points(60)
    distances = np.linalg.norm(points[:, None] - points[None], axis=2)
    fitted = fit_map(distances[:-1, :-1], method=method, metric=PRECOMPUTED, seed=0)
    assert fitted.coords_.shape == (59, 2) and np.isfinite(fitted.coords_).all()
    assert fitted.trustworthiness_ > 0.9  # four well-separated clusters stay apart
    placed = fitted.transform(distances[-1:, :-1])[0]  # the 60th point: in the last (4, 4) cluster
    centres = np.array([fitted.coords_[i * 15:(i + 1) * 15 - (i == 3)].mean(axis=0) for i in range(4)])
    assert int(np.argmin(np.linalg.norm(centres - placed, axis=1))) == 3
    again = load_map(_saved(fitted))
    np.testing.assert_allclose(again.transform(distances[-1:, :-1]), fitted.transform(distances[-1:, :-1]), atol=1e-4)


@pytest.mark.slow
def test_the_autoencoder_map_of_distances_trains_on_their_mds_embedding_and_a_method_without_one_is_refused(monkeypatch):
    from songsim import maps

    points = planar_points(40)
    distances = np.linalg.norm(points[:, None] - points[None], axis=2)
    fitted = fit_map(distances, method="ae2d", metric=PRECOMPUTED, seed=0)
    assert fitted.coords_.shape == (40, 2) and np.isfinite(fitted.coords_).all()
    np.testing.assert_allclose(fitted.transform(distances[:2]), fitted.coords_[:2], atol=1e-4)  # Gower, then the encoder
    monkeypatch.setitem(maps._REGISTRY, "vectors_only", maps.MapMethod(name="vectors_only", fit=maps._fit_pca, label="Vectors only"))
    with pytest.raises(SongsimError, match="The Vectors only map needs vectors, and this space gives distances: choose umap, tsne, pca"):
        fit_map(distances, method="vectors_only", metric=PRECOMPUTED)


def _saved(fitted) -> Path:
    import tempfile

    from songsim.maps import save_map

    return save_map(fitted, Path(tempfile.mkdtemp()) / "map.pkl")


# --------------------------------------------------------------------------------------
# import: the strong check, malformed files, partial coverage
# --------------------------------------------------------------------------------------
def test_a_matrix_of_euclidean_distances_gives_the_neighbours_of_the_space(catalogue_dir, tmp_path):
    ids, matrix = euclidean_matrix(catalogue_dir)
    order = np.random.default_rng(1).permutation(len(ids))  # any row order, and the columns in another one
    columns = [ids[i] for i in order[::-1]]
    shuffled = matrix[np.ix_(order, order[::-1])]
    report = import_distances(catalogue_dir, name=NAME, distances=write_matrix(tmp_path / "d.tsv", [ids[i] for i in order], shuffled, columns=columns))
    assert (report.kind, report.dim, report.n_covered, report.missing) == ("distances", len(ids), len(ids), [])
    catalogue = load_catalogue(catalogue_dir)
    space = load_built_space(catalogue, NAME)
    assert space.metric == PRECOMPUTED and space.vectors_.shape == (len(ids), len(ids)) and space.dim == len(ids)
    np.testing.assert_allclose(space.vectors_, matrix, rtol=1e-6)
    assert space_info(catalogue, NAME).metric == PRECOMPUTED and NAME in built_space_names(catalogue)
    for track_id in ids:
        for artist_filter in (False, True):
            mine = search(catalogue, NAME, track_id=track_id, k=5, exclude_artist=artist_filter)
            theirs = search(catalogue, "handcrafted", track_id=track_id, k=5, metric="euclidean", exclude_artist=artist_filter)
            assert mine.track_ids(catalogue) == theirs.track_ids(catalogue)
            np.testing.assert_allclose(mine.neighbours.scores, theirs.neighbours.scores, rtol=1e-4)
    assert mine.metric == PRECOMPUTED
    for hubness in ("mp-gauss", "ls"):
        mine = search(catalogue, NAME, track_id=ids[4], k=5, hubness=hubness)
        theirs = search(catalogue, "handcrafted", track_id=ids[4], k=5, metric="euclidean", hubness=hubness)
        assert mine.track_ids(catalogue) == theirs.track_ids(catalogue)
    with pytest.raises(SongsimError, match=f"Space '{NAME}' gives distances, not vectors: it has no cosine similarity"):
        search(catalogue, NAME, track_id=ids[0], metric="cosine")
    with pytest.raises(SongsimError, match="gives vectors, not distances"):
        resolve_metric(load_built_space(catalogue, "handcrafted"), PRECOMPUTED)
    # label figures: as the space's under euclidean, whatever path they take
    labels = catalogue.labels("genre")
    assert label_precision(space.vectors_, labels, np.arange(len(ids)), metric=PRECOMPUTED) == pytest.approx(
        label_precision(load_built_space(catalogue, "handcrafted").vectors_, labels, np.arange(len(ids)), metric="euclidean")
    )
    figures = evaluate_catalogue(catalogue_dir, spaces=[NAME, "handcrafted"], metric=None)["spaces"]
    euclidean = evaluate_catalogue(catalogue_dir, spaces=["handcrafted"], metric="euclidean")["spaces"]["handcrafted"]
    for figure in ("genre_p@5", "genre_p@5_artist_filtered", "ndcg@6", "map", "pairwise_acc", "overlap@5", "hubness_skew", "v_measure"):
        assert figures[NAME][figure] == pytest.approx(euclidean[figure], abs=1e-3), figure
    assert figures[NAME]["metric"] == PRECOMPUTED and not figures[NAME]["skipped"]


def test_a_mirex_file_with_its_list_of_files_imports(catalogue_dir, tmp_path):
    ids, matrix = euclidean_matrix(catalogue_dir)
    catalogue = load_catalogue(catalogue_dir)
    files = [Path(p).relative_to(catalogue_dir).as_posix() for p in catalogue.tracks["path"]]  # audio paths
    keys = [str(i + 1) for i in range(len(ids))]
    lines = ["My system 0.1", *(f"{k}\t{f}" for k, f in zip(keys, files)), *matrix_lines(keys, matrix)]
    path = tmp_path / "mirex.txt"
    path.write_text("\r\n".join(lines) + "\r\n")  # written on Windows, as MIREX files often were
    report = import_distances(catalogue_dir, name=NAME, distances=path)
    assert report.n_covered == len(ids)
    np.testing.assert_allclose(load_built_space(catalogue, NAME).vectors_, matrix, rtol=1e-6)


def _malformed(case: str, ids: list[str], matrix: np.ndarray, tmp_path: Path) -> Path:
    lines = matrix_lines(ids, matrix)
    path = tmp_path / "bad.tsv"
    if case == "unknown":
        lines = matrix_lines([*ids[:2], "ghost", *ids[3:]], matrix, columns=[*ids[:2], "ghost", *ids[3:]])
    elif case == "duplicate-rows":
        lines = matrix_lines([ids[0], *ids[:-1]], matrix, columns=ids)
    elif case == "duplicate-columns":
        lines = matrix_lines(ids, matrix, columns=[ids[0], *ids[:-1]])
    elif case == "same-track-twice":  # a track id and its audio path name one track
        lines = matrix_lines([*ids[:-1], "audio/pads-00.wav"], matrix, columns=[*ids[:-1], "audio/pads-00.wav"])
    elif case == "rows-differ":
        lines = matrix_lines(ids, matrix, columns=[*ids[:-1], "elsewhere"])
    elif case == "non-square":
        lines = lines[:-2]
    elif case == "ragged-long":
        lines[5] += "\t0.5"
    elif case == "ragged-short":
        lines[5] = lines[5].rsplit("\t", 1)[0]
    elif case == "text":
        cells = lines[4].split("\t")
        cells[3] = "far"
        lines[4] = "\t".join(cells)
    elif case == "empty":
        cells = lines[4].split("\t")
        cells[3] = ""
        lines[4] = "\t".join(cells)
    elif case in ("nan", "inf", "negative"):
        cells = lines[7].split("\t")
        cells[2] = {"nan": "NaN", "inf": "inf", "negative": "-0.25"}[case]
        lines[7] = "\t".join(cells)
    elif case == "no-header":
        lines = [line.split("\t")[1] for line in lines[1:]]
    elif case == "empty-file":
        lines = []
    elif case == "nameless-row":
        lines[3] = "\t" + lines[3].split("\t", 1)[1]
    elif case == "format":
        path = tmp_path / "bad.csv"
    elif case == "missing":
        return tmp_path / "nowhere.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unknown", r"1 ids are not tracks of .*tracks.csv: row 3 'ghost'.*Use the track_id"),
        ("duplicate-rows", r"names a track twice in its rows: 'pads-00' \(line 2 and line 3\).*one row and one column"),
        ("duplicate-columns", r"names a track twice in its header row: 'pads-00' \(field 2 and field 3\)"),
        ("same-track-twice", r"names a track twice: rows 1 and 24 \(pads-00\)"),
        ("rows-differ", r"its rows and its header row name different tracks \(rows with no column: bass|pluck.*columns with no row: elsewhere"),
        ("non-square", r"has 22 rows of distances for the 24 tracks its header row names: a distance matrix is square"),
        ("ragged-long", r"lines 6 \(25\) hold another number of distances .* than the 24 tracks"),
        ("ragged-short", r"lines 6 \(23\) hold another number of distances"),
        ("text", r"holds values that are not numbers: line 5 \(row 'pads-03'\), column 'pads-02': 'far'.*Give only numbers"),
        ("empty", r"has empty cells: line 5 \(row 'pads-03'\), column 'pads-02'.*listed as missing"),
        ("nan", r"holds NaN or infinite distances: line 8 \(row 'drums-00', column 'pads-01'\)"),
        ("inf", r"holds NaN or infinite distances: line 8 \(row 'drums-00', column 'pads-01'\)"),
        ("negative", r"holds negative distances: line 8 \(row 'drums-00', column 'pads-01'\): -0.25.*max − similarity"),
        ("no-header", r"line 2 is neither the matrix's header row nor a 'key<TAB>file' line.*Start the file with the header row"),
        ("empty-file", r"has no header row"),
        ("nameless-row", r"has rows with no track name in their first cell: line 4"),
        ("format", r"format '.csv' is not supported for a distance matrix.*tab-separated"),
        ("missing", r"does not exist"),
    ],
)
def test_a_malformed_matrix_is_refused_by_file_line_and_fix_and_nothing_is_stored(catalogue_dir, tmp_path, case, expected):
    ids, matrix = euclidean_matrix(catalogue_dir)
    path = _malformed(case, ids, matrix, tmp_path)
    with pytest.raises(ImportedSpaceError, match=expected) as caught:
        import_distances(catalogue_dir, name=NAME, distances=path)
    assert str(caught.value).startswith(str(path.resolve()) if case not in ("format", "missing") else str(path))
    assert not space_dir(load_catalogue(catalogue_dir).derived_dir, NAME).exists()


def test_the_size_limit_is_checked_from_the_header_and_a_reimport_may_change_the_kind(catalogue_dir, tmp_path, monkeypatch):
    from songsim.spaces import imported

    ids, matrix = euclidean_matrix(catalogue_dir)
    path = write_matrix(tmp_path / "d.tsv", ids, matrix)
    monkeypatch.setattr(imported, "MAX_DISTANCE_TRACKS", 20)
    with pytest.raises(ImportedSpaceError, match="names 24 tracks; at most 20 are imported"):
        import_distances(catalogue_dir, name=NAME, distances=path)
    monkeypatch.undo()
    from songsim.spaces.store import import_vectors

    folder = space_dir(load_catalogue(catalogue_dir).derived_dir, NAME)
    import_distances(catalogue_dir, name=NAME, distances=path)
    assert (folder / "distances.npy").is_file() and not (folder / "vectors.npy").exists()
    np.savez(tmp_path / "v.npz", ids=np.array(ids), vectors=matrix[:, :4])
    import_vectors(catalogue_dir, name=NAME, vectors=tmp_path / "v.npz", metric="euclidean")
    assert (folder / "vectors.npy").is_file() and not (folder / "distances.npy").exists()
    space = load_built_space(load_catalogue(catalogue_dir), NAME)
    assert space.metric == "euclidean" and space.dim == 4


def test_the_cli_refuses_a_bad_matrix_and_bad_options_in_one_line(catalogue_dir, tmp_path, capsys):
    ids, matrix = euclidean_matrix(catalogue_dir)
    bad = _malformed("negative", ids, matrix, tmp_path)
    assert main(["space", "import", str(catalogue_dir), "--name", NAME, "--distances", str(bad)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "bad.tsv" in error and "negative distances" in error and "Traceback" not in error
    good = write_matrix(tmp_path / "good.tsv", ids, matrix)
    assert main(["space", "import", str(catalogue_dir), "--name", NAME, "--distances", str(good), "--metric", "cosine"]) == 2
    assert "--ids and --metric are for --vectors" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one source, not both
        main(["space", "import", str(catalogue_dir), "--name", NAME, "--distances", str(good), "--vectors", str(good)])
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_partial_matrix_lists_the_missing_tracks_and_never_returns_them(catalogue_dir, tmp_path, capsys):
    ids, matrix = euclidean_matrix(catalogue_dir)
    path = write_matrix(tmp_path / "part.tsv", ids[3:], matrix[3:, 3:])
    assert main(["space", "import", str(catalogue_dir), "--name", NAME, "--distances", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["missing"] == ids[:3] and report["n_covered"] == len(ids) - 3 and report["kind"] == "distances"
    catalogue = load_catalogue(catalogue_dir)
    space = load_built_space(catalogue, NAME)
    assert space.covered_.tolist() == [False] * 3 + [True] * (len(ids) - 3)
    assert np.isfinite(space.vectors_).all()
    for track_id in ids[3:]:
        found = search(catalogue, NAME, track_id=track_id, k=10).track_ids(catalogue)
        assert not set(found) & set(ids[:3])
        assert found[:5] == search(catalogue, "handcrafted", track_id=track_id, k=5, metric="euclidean",
                                   candidates=space.covered_).track_ids(catalogue)  # fmt: skip
    assert not set(search(catalogue, NAME, track_id=ids[5], k=5, hubness="mp").track_ids(catalogue)) & set(ids[:3])
    with pytest.raises(SongsimError, match=f"no vector for {ids[0]}"):
        search(catalogue, NAME, track_id=ids[0])

    build(catalogue_dir, spaces=[NAME], map_methods=("pca",), n_jobs=1)
    coords = load_map(map_path(catalogue, NAME, "pca")).coords_
    assert np.isnan(coords[:3]).all() and np.isfinite(coords[3:]).all()
    figures = evaluate_catalogue(catalogue_dir, spaces=[NAME, "handcrafted"])["spaces"]
    assert figures[NAME]["n_queries"]["genre_p@5"] == len(ids) - 3
    assert "v_measure" in figures[NAME] and "ndcg@6" in figures[NAME]


@pytest.mark.slow
def test_a_distance_space_builds_its_maps_and_goes_through_the_cli_a_study_add_space_and_the_report(catalogue_dir, tmp_path, capsys):
    ids, matrix = euclidean_matrix(catalogue_dir)

    def cli(*args) -> dict | str:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out) if "--json" in args else out

    path = write_matrix(tmp_path / "d.tsv", ids, matrix)
    out = cli("space", "import", catalogue_dir, "--name", NAME, "--distances", path, "--description", "L2 of handcrafted")
    assert out.startswith(f"imported {NAME}: a 24 × 24 distance matrix for 24 of 24 tracks from {path.resolve()}")
    shown = cli("query", catalogue_dir, "--track", ids[6], "--space", NAME, "--json")
    assert shown["metric"] == PRECOMPUTED and len(shown["neighbours"]) == 5 and all(n["score"] <= 0 for n in shown["neighbours"])
    figures = cli("evaluate", catalogue_dir, "--spaces", f"{NAME},handcrafted", "--json")
    assert figures["spaces"][NAME]["metric"] == PRECOMPUTED and "genre_p@5" in figures["spaces"][NAME]

    build(catalogue_dir, spaces=[NAME], map_methods=("pca", "umap", "tsne"), n_jobs=1)
    catalogue = load_catalogue(catalogue_dir)
    for method in ("pca", "umap", "tsne"):
        fitted = load_map(map_path(catalogue, NAME, method))
        assert fitted.metric == PRECOMPUTED and fitted.coords_.shape == (24, 2) and 0 < fitted.trustworthiness_ <= 1

    cli("study", "create", catalogue_dir, "--name", "given", "--spaces", f"handcrafted,{NAME}", "--queries", "6", "--k", "3")
    study = cli("study", "show", catalogue_dir, "--name", "given", "--json")
    for query in study["queries"]:
        assert query["runs"][NAME] == search(catalogue, NAME, track_id=query["query_id"], k=3, exclude_artist=True).track_ids(catalogue)
    first = study["queries"][0]
    for candidate in first["pool"]:
        cli("rate", catalogue_dir, "--study", "given", "--rater", "r1", "--query", first["query_id"], "--candidate", candidate, "--broad", "2")
    report = cli("report", catalogue_dir, "--study", "given", "--json")
    assert NAME in report["spaces"]

    cli("study", "create", catalogue_dir, "--name", "later", "--spaces", "handcrafted", "--queries", "4", "--k", "3")
    out = cli("study", "add-space", catalogue_dir, "--name", "later", "--space", NAME)
    assert out.startswith(f"added {NAME} to study later")
    later = cli("study", "show", catalogue_dir, "--name", "later", "--json")
    assert all(NAME in q["runs"] and set(q["runs"][NAME]) <= set(q["pool"]) for q in later["queries"])
    with pytest.raises(SongsimError, match="gives distances, not vectors"):
        from songsim.studies.study import create_study

        create_study(catalogue_dir, "cosine", spaces=[NAME], n_queries=4, k=3, metric="cosine")


# --------------------------------------------------------------------------------------
# the pages
# --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_explore_serves_a_distance_space_with_its_own_distances_only(catalogue_dir, tmp_path, monkeypatch):
    ids, matrix = euclidean_matrix(catalogue_dir)
    import_distances(catalogue_dir, name=NAME, distances=write_matrix(tmp_path / "d.tsv", ids, matrix))
    at = open_app(catalogue_dir, monkeypatch, space=NAME, method="pca")
    assert any(f"classical MDS map of **{NAME}**" in c.value for c in at.caption)
    similarity = at.radio(key=f"metric:{NAME}")
    assert list(similarity.options) == ["its own distances"] and similarity.value == PRECOMPUTED
    assert len(at.get("audio")) == 6
    catalogue = load_catalogue(catalogue_dir)
    expected = search(catalogue, NAME, track_id=ids[0], k=5)
    text = "\n".join(m.value for m in at.markdown)
    assert "· distance " in text and "similarity" not in text and "−" not in text
    for rank, score in enumerate(expected.neighbours.scores, start=1):
        assert f"**{rank}. " in text and f"distance {-score:.3f}" in text
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("space")
    assert table.loc[NAME, "state"] == "done" and "a distance matrix" in table.loc[NAME, "detail"]


@pytest.mark.slow
def test_the_models_page_imports_a_distance_matrix_and_names_a_bad_one(catalogue_dir, tmp_path, monkeypatch):
    ids, matrix = euclidean_matrix(catalogue_dir)
    at = open_app(catalogue_dir, monkeypatch)
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception

    bad = "\n".join(matrix_lines([*ids[:-1], "ghost"], matrix, columns=[*ids[:-1], "ghost"])) + "\n"
    at.text_input[0].set_value("from-browser")
    at.radio(key="import_kind").set_value("distances")
    at.file_uploader[0].set_value(("system.tsv", bad.encode(), "text/tab-separated-values"))
    at.button[-1].click().run()
    assert at.error and at.error[0].value.startswith("system.tsv: ") and "row 24 'ghost'" in at.error[0].value
    assert "songsim-import-" not in at.error[0].value
    assert "from-browser" not in built_space_names(load_catalogue(catalogue_dir))

    good = "\n".join(matrix_lines(ids[2:], matrix[2:, 2:])) + "\n"
    at.file_uploader[0].set_value(("system.tsv", good.encode(), "text/tab-separated-values"))
    at.button[-1].click().run()
    assert not at.exception, at.exception
    assert any("Imported **from-browser**: a 22 × 22 distance matrix for 22 of 24 tracks" in s.value for s in at.success)
    assert any(ids[0] in i.value and ids[1] in i.value for i in at.info)
    table = at.dataframe[0].value.set_index("space")
    assert table.loc["from-browser", "state"] == "done" and "system.tsv" in table.loc["from-browser", "detail"]
    assert load_built_space(load_catalogue(catalogue_dir), "from-browser").metric == PRECOMPUTED


def test_reading_a_large_matrix_is_vectorised(tmp_path):
    """2 000 tracks (4 M cells, ~40 MB of text): read well inside a few seconds (pandas' C
    reader, no Python loop per cell)."""
    import time

    from songsim.spaces.imported import read_distances

    n = 2_000
    rng = np.random.default_rng(0)
    matrix = rng.random((n, n), dtype=np.float32)
    names = [f"t{i}" for i in range(n)]
    buffer = io.StringIO()
    buffer.write("\t".join(["", *names]) + "\n")
    np.savetxt(buffer, matrix, fmt="%.6f", delimiter="\t")
    body = buffer.getvalue().split("\n")
    text = body[0] + "\n" + "\n".join(f"{name}\t{line}" for name, line in zip(names, body[1:]))
    (tmp_path / "big.tsv").write_text(text + "\n")
    started = time.perf_counter()
    read_names, read = read_distances(tmp_path / "big.tsv")
    seconds = time.perf_counter() - started
    assert read_names == names and read.dtype == np.float32 and read.shape == (n, n)
    np.testing.assert_allclose(read, matrix, atol=1e-6)
    assert seconds < 15, seconds
