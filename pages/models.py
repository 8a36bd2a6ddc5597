"""Models: every space scored against the catalogue's labels, and building the missing ones."""

import pandas as pd
import streamlit as st

from pages.common import load_catalogue_cached, load_space_cached, run_through_app
from songsim.build import build
from songsim.errors import SongsimError
from songsim.evaluate import OVERLAP_NS, evaluate_catalogue, figures_table
from songsim.plots import confusion_figure, loss_curves
from songsim.spaces.learned import training_summary
from songsim.spaces.plugins import plugin_problems
from songsim.neighbours import METRICS, PRECOMPUTED
from songsim.spaces.imported import DISTANCE_FORMATS, MAX_DISTANCE_TRACKS
from songsim.spaces.imported import FORMATS as VECTOR_FORMATS
from songsim.spaces.store import built_space_names, import_distance_bytes, import_vector_bytes, space_dir, stored_meta
from songsim.stages import MISSING, STALE, space_states

FIGURES = {
    "genre_p@5": "genre P@5",
    "genre_p@5_artist_filtered": "genre P@5, artist filter",
    "emotion_p@5": "emotion P@5",
    "year_distance@5": "year distance @5",
    "ndcg@1": "NDCG@1",
    "ndcg@6": "NDCG@6",
    "map": "MAP",
    "pairwise_acc": "pairwise acc.",
    **{f"overlap@{n}": f"top-{n} overlap (album/artist)" for n in OVERLAP_NS},
    **{f"edit_distance@{n}": f"top-{n} edit distance (album/artist)" for n in OVERLAP_NS},
    "v_measure": "V-measure (k-means)",
    "ami": "AMI (k-means)",
    "v_measure_gmm": "V-measure (GMM)",
    "ami_gmm": "AMI (GMM)",
    "hubness_skew": "hubness skew",
    "orphans": "orphans",
}

run_through_app()
root = st.session_state["catalogue_root"]
catalogue = load_catalogue_cached(root)


@st.cache_data(show_spinner=False)
def model_summary(root: str, name: str, fit_key: str) -> dict:
    """Training history and test metrics of a learned space (``fit_key`` keys the cache)."""
    return training_summary(load_space_cached(root, name))


@st.cache_data(show_spinner="Scoring every space against the labels…")
def evaluation(root: str, fit_keys: tuple[tuple[str, str], ...]) -> dict:
    """``fit_keys`` only keys the cache: a refit space is scored again."""
    return evaluate_catalogue(root, spaces=[name for name, _ in fit_keys])


st.title("Models")
built = built_space_names(catalogue)
fit_keys = tuple((n, stored_meta(space_dir(catalogue.derived_dir, n)).get("fit_key", "")) for n in built)

st.subheader("Spaces")
for problem in plugin_problems():  # every other space works; the message names the plug-in and the fix
    st.warning(f"Plug-in not loaded: {problem.message}")
rows = space_states(root)
st.dataframe(
    pd.DataFrame(rows), hide_index=True, width="stretch",
    column_config={
        "fitted_at": "fitted at (UTC)", "fit_seconds": "fit s", "package": "plug-in package",
        "used_inputs": st.column_config.ListColumn(
            "inputs used", help="What the stored fit was made from (for a space not built: what a build would use now)",
        ),
    },
)  # fmt: skip
st.caption(
    "**Inputs used**: a space with optional inputs (fusion-ae, triplet) uses each one this catalogue has — a space "
    "it can build (its labels exist), a slow one such as musicnn only once built; gaining one makes it stale."
)
buildable = [row["space"] for row in rows if row["state"] in (MISSING, STALE)]
if buildable and st.button(f"Build {', '.join(buildable)}", type="primary"):
    with st.status(f"Building {', '.join(buildable)}…", expanded=True) as status:
        bar = st.progress(0.0)
        try:
            report = build(root, spaces=buildable, on_progress=lambda stage, f, m: bar.progress(min(max(f, 0.0), 1.0), text=f"{stage}: {m}"))
        except SongsimError as exc:
            status.update(label="Build failed", state="error")
            st.error(str(exc))
        else:
            status.update(label=f"Built {', '.join(report.built) or 'nothing'}", state="complete")
            st.session_state.models_build_skipped = report.skipped  # shown once, after the rerun
            st.rerun()  # the caches are keyed by fit key: every session picks up the new fits

for name, reason in st.session_state.pop("models_build_skipped", {}).items():
    st.warning(f"Not built: {name} — {reason}")

with st.expander("Import your own vectors or distances as a space"):
    st.caption(
        "**Vectors**, one per track: `.npz` (arrays `ids`, `vectors`), `.csv` or `.parquet` (a `track_id` column and one "
        "column per dimension), `.npy` or the TensorBoard Projector's `vectors.tsv` with an ids file (one track id "
        "or audio path per line, or the Projector's `metadata.tsv`). **Distances** (as MIREX systems gave them): a "
        f"tab-separated N × N matrix (`.tsv`/`.txt`, at most {MAX_DISTANCE_TRACKS:,} tracks) whose first row and first "
        "column name the tracks (track ids or audio paths; the corner cell is ignored), row = query, smaller = closer. "
        "Tracks the file lacks are listed and left out."
    )
    with st.form("import-vectors", clear_on_submit=False):
        import_name = st.text_input("Name of the space", placeholder="e.g. my-model")
        import_kind = st.radio(
            "The file holds", ["vectors", "distances"], horizontal=True, key="import_kind",
            format_func={"vectors": "vectors (one per track)", "distances": "a distance matrix (N × N)"}.get,
        )  # fmt: skip
        vectors_upload = st.file_uploader(
            "Vectors file or distance matrix", type=sorted({f.lstrip(".") for f in (*VECTOR_FORMATS, *DISTANCE_FORMATS)})
        )
        ids_upload = st.file_uploader("Ids file (vectors in .npy and .tsv)", type=["txt", "tsv", "csv"])
        import_metric = st.radio("The similarity the vectors are made for (vectors only)", METRICS, horizontal=True)
        import_description = st.text_input("What the vectors or distances are (optional)")
        submitted = st.form_submit_button("Import")
    if submitted:
        if vectors_upload is None:
            st.error(f"Choose the {'distance matrix' if import_kind == 'distances' else 'vectors file'} first.")
        elif import_kind == "distances" and ids_upload is not None:
            st.error("A distance matrix names its tracks in its first row and column: leave the ids file out.")
        else:
            try:
                if import_kind == "distances":
                    imported = import_distance_bytes(
                        root, name=import_name.strip(), distances=(vectors_upload.name, vectors_upload.getvalue()),
                        description=import_description.strip(),
                    )  # fmt: skip
                else:
                    imported = import_vector_bytes(
                        root, name=import_name.strip(), vectors=(vectors_upload.name, vectors_upload.getvalue()),
                        ids=None if ids_upload is None else (ids_upload.name, ids_upload.getvalue()),
                        metric=import_metric, description=import_description.strip(),
                    )  # fmt: skip
            except SongsimError as exc:
                st.error(str(exc))
            else:
                st.session_state.models_imported = imported.as_dict()
                st.rerun()
    if last := st.session_state.get("models_imported"):
        distances = last.get("kind") == "distances"
        what = f"a {last['n_covered']} × {last['n_covered']} distance matrix" if distances else f"{last['dim']}-d vectors"
        st.success(f"Imported **{last['name']}**: {what} for {last['n_covered']} of {last['n_tracks']} tracks.")
        if last["missing"]:
            st.info(
                f"No {'distances' if distances else 'vector'} (left out of its searches, maps, figures and study pools): "
                f"{', '.join(last['missing'][:50])}"
            )

st.subheader("Scored against the labels")
st.caption(
    "The automatic counterpart of a listening study. Each space is searched with its own similarity (cosine; "
    "euclidean for wavenet, ae-2d and spectrogram-l2). **P@5**: share of the top-5 (query excluded) "
    "with the query's label; the artist filter leaves out the query's artist (MIREX). **Year distance**: mean "
    "|year difference| of the top-5. **Ranking protocol**: per query 3 same-genre and 3 other-genre songs drawn "
    "at random and ranked by the space: NDCG@k = DCG@k / IDCG@k with binary gain and log2(rank + 1) discount, "
    "MAP = mean over queries of average precision; **pairwise acc.**: share of 15 (same, other) pairs where the "
    "same-genre song is closer. **Top-n overlap / edit distance** (n = 3, 5, 10; the artist-similarity protocol): "
    "the reference list ranks same-album songs above same-artist ones (each tier in the space's own order); overlap "
    "= share of the reference top-n in the space's top-n, edit distance = Levenshtein distance between the two "
    "ranked lists over their length (0 = identical). **V-measure / AMI**: k-means and Gaussian-mixture clusters "
    "(as many as genres) against genre. **Hubness**: skewness of how often each song appears in others' top-5, and the share that "
    "never does (orphans). Supervised spaces are scored only with queries from their own test split; "
    "`python -m songsim evaluate DIR --folds K` scores them with K fold models instead, every song a query. "
    "**[low, high]**: 95 % bootstrap interval over the songs (the same resamples for every space); the clustering "
    "figures have none."
)
if built:
    result = evaluation(root, fit_keys)
    st.dataframe(figures_table(result, with_ci=True).rename(index=FIGURES), width="stretch")
    counts = {name: scores.get("n_queries", {}).get("genre_p@5") for name, scores in result["spaces"].items()}
    st.caption("Queries per space (genre P@5): " + ", ".join(f"{n}: {c}" for n, c in counts.items()))
    euclidean = [name for name, scores in result["spaces"].items() if scores.get("metric") == "euclidean"]
    given = [name for name, scores in result["spaces"].items() if scores.get("metric") == PRECOMPUTED]
    st.caption(
        "Similarity: " + "".join(f"{kind} for {', '.join(names)}; " for kind, names in (("euclidean", euclidean), ("−distance as given", given)) if names)
        + ("cosine for the rest." if euclidean or given else "cosine.")
    )
    for name, scores in result["spaces"].items():
        for figure, reason in scores.get("skipped", {}).items():
            st.info(f"{name}: {FIGURES.get(figure, figure)} skipped — {reason}")

st.subheader("Learned models")
trained = {name: summary for name in built if (summary := model_summary(root, name, dict(fit_keys)[name]))}
if not trained:
    st.caption("No learned space is built yet: build them above, or run `python -m songsim train DIR`.")
for name, summary in trained.items():
    history, metrics = summary["history"], summary["test_metrics"]
    with st.expander(
        f"**{name}** · {summary['dim']}-d · trained {history['seconds']:.0f} s on {history['device']} · "
        f"best epoch {history['best_epoch']} of {len(history['train_loss'])}"
        + (f" · test accuracy {metrics['accuracy']:.2f} on {metrics['n']} songs" if "accuracy" in metrics else ""),
        expanded=False,
    ):
        if metrics.get("converged") is False:
            st.warning(
                f"{name} did not converge on this catalogue: its discriminator loss ended at "
                f"{metrics['discriminator_loss']:.3f} (equilibrium {metrics['equilibrium_discriminator_loss']:.3f}) "
                f"and its reconstruction error at {metrics['reconstruction_mse']:.2f} (segment variance "
                f"{metrics['segment_variance']:.2f}); treat its neighbours with suspicion."
            )
        curves, confusion = st.columns(2)
        curves.line_chart(loss_curves(summary), x_label="epoch", y_label="loss")
        if "confusion_matrix" in metrics:
            confusion.plotly_chart(confusion_figure(metrics), width="stretch", key=f"confusion-{name}")
        else:
            confusion.json({k: v for k, v in metrics.items()})
