"""Report: a study's ratings turned into per-space NDCG / MAP / P@k (and top-n overlap / edit
distance against the panel's reference list) with confidence intervals, significance tests,
rater agreement and the label-based figures beside them.

Logic lives in :mod:`songsim.studies.report` (computed) and :mod:`songsim.studies.render` (drawn),
the same report as ``python -m songsim report``.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from pages.common import file_state, run_through_app
from songsim.errors import SongsimError
from songsim.studies.ratings import ratings_path
from songsim.studies.render import (
    bars_figure,
    display_matrix,
    display_reference,
    display_spaces,
    formulas,
    heatmap_figure,
    reference_caption,
    settings,
    summary_lines,
    write_html,
)
from songsim.studies.report import StudyReport, compute_report
from songsim.studies.study import list_studies, study_path

run_through_app()
root = st.session_state["catalogue_root"]
st.title("Report")

names = list_studies(root)
if not names:
    st.info("No study yet: create one on the **Studies** page, then rate on **Listen & rate**.")
    st.stop()


@st.cache_resource(show_spinner="Computing the report (bootstrap, tests, label figures)…", max_entries=16)
def cached_report(root: str, name: str, study_state: tuple[int, int], ratings_state: tuple[int, int]) -> StudyReport:
    """The report, recomputed only when the study file or ratings.csv changed."""
    return compute_report(root, name)


@st.cache_data(show_spinner=False, max_entries=16)
def exports(root: str, name: str, study_state: tuple[int, int], ratings_state: tuple[int, int]) -> tuple[bytes, bytes, bytes]:
    """(JSON, zip of CSV tables, self-contained HTML) of the report, as bytes for downloads."""
    report = cached_report(root, name, study_state, ratings_state)
    with tempfile.TemporaryDirectory() as folder:
        html = write_html(report, Path(folder) / f"{name}.html").read_bytes()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in report.write_csv(folder):
                archive.write(path, path.name)
    return json.dumps(report.as_dict(), indent=2).encode(), buffer.getvalue(), html


name = st.selectbox("Study", names, key="report-study")
state = (file_state(study_path(root, name)), file_state(ratings_path(root)))
try:
    report = cached_report(root, name, *state)
except SongsimError as exc:
    st.error(str(exc))
    st.stop()
for problem in report.problems:
    st.warning(problem)
if report.per_query.empty:
    st.info("Nobody has rated this study yet: the figures appear with the first rating.")
    st.stop()

k = report.k
st.subheader(f"Per space · NDCG@{k}, MAP, P@{k} (95 % bootstrap CI)")
st.dataframe(display_spaces(report), hide_index=True)
left, right = st.columns(2)
left.plotly_chart(bars_figure(report), key="bars")
right.plotly_chart(heatmap_figure(report), key="heatmap")
if report.reference_figures:
    st.subheader("Top-n overlap and edit distance against the panel's reference list")
    st.caption(reference_caption(report) + "; edit distance: lower is better.")
    st.dataframe(display_reference(report), hide_index=True)

st.subheader("Significance and agreement")
for line in summary_lines(report):
    st.markdown("- " + line.replace("_", "\\_").replace("*", "\\*"))
if len(report.spaces) > 1:
    left, right = st.columns(2)
    left.caption(f"Wilcoxon signed-rank on NDCG@{k}: Holm-adjusted p (row vs column)")
    left.dataframe(display_matrix(report, "p_holm"))
    right.caption("Mean NDCG difference (row − column)")
    right.dataframe(display_matrix(report, "mean_difference"))
st.caption("Raters: counts, means and how well each predicts the others")
st.dataframe(report.raters, hide_index=True)
if len(report.labels_table):
    st.caption(
        "Label-based figures of the same spaces beside the human NDCG: do the labels predict what listeners hear? "
        "overlap@n / edit_distance@n use the album/artist reference list; edit distance: lower is better."
    )
    st.dataframe(report.labels_table, hide_index=True)

with st.expander("How every figure is computed"):
    for figure, definition in formulas(report):
        st.markdown(f"**{figure}** — {definition}")
    st.json(settings(report), expanded=False)

as_json, as_zip, as_html = exports(root, name, *state)
left, middle, right = st.columns(3)
left.download_button("Report (JSON)", as_json, f"{name}-report.json", "application/json")
middle.download_button("Tables (CSV, zip)", as_zip, f"{name}-tables.zip", "application/zip")
right.download_button("Report (HTML, self-contained)", as_html, f"{name}-report.html", "text/html")
