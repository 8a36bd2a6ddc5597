"""Panel-study reports, rendered for people: terminal text, the HTML export, figures, page tables.

Every function takes a :class:`~songsim.studies.report.StudyReport` (computed by
:mod:`songsim.studies.report`) and changes nothing in it:

- :func:`format_text`: the report for a terminal (``python -m songsim report``);
- :func:`write_html`: one self-contained HTML file (plotly.js inlined, no network needed);
- :func:`bars_figure`, :func:`heatmap_figure`: the plotly figures the Report page draws;
- :func:`display_spaces`, :func:`display_reference`, :func:`display_matrix`,
  :func:`summary_lines`, :func:`reference_caption`: page-ready tables and sentences, figures
  shown as ``value [low, high]`` with 3 decimals (FINE with 1), p-values with 3 significant
  digits ("< 0.001" below), undefined values as "—";
- :func:`settings` and :func:`formulas`: the study settings and the definition of every
  figure, with the study's K and θ filled in, which every export states.

Nothing here imports streamlit: the Report page draws what these functions return.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from songsim import __version__
from songsim.files import atomic_write
from songsim.studies.report import REFERENCE_NS, StudyReport, figure_names, lower_is_better
from songsim.studies.statistics import CI_LEVEL, EXACT_WILCOXON_MAX_N, json_scalar


def _fmt(value: Any, digits: int = 3) -> str:
    """A number for people: ``digits`` decimals, "—" when undefined."""
    value = json_scalar(value)
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _fmt_p(value: Any) -> str:
    """A p-value for people: 3 significant digits, "< 0.001" below."""
    value = json_scalar(value)
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3g}"


def _p_clause(value: Any) -> str:
    """``"p = 0.0146"`` or ``"p < 0.001"``."""
    shown = _fmt_p(value)
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


def settings(report: StudyReport) -> dict[str, Any]:
    """The study settings and report options every export states."""
    study = report.study
    return {
        "study": study.name,
        "k": report.k,
        "spaces": ", ".join(study.spaces),
        "queries": len(study.queries),
        "rated queries": int(report.per_query["query_id"].nunique()),
        "rated pairs": int(len(report.pairs)),
        "raters": report.agreement["n_raters"],
        "raters per pair": study.raters_per_pair,
        "panel size": study.panel_size,
        "relevance threshold θ (mean BROAD)": study.relevance_threshold,
        "artist filter": study.artist_filter,
        "neighbour metric": study.metric,
        "catalogue fingerprint": study.catalogue_fingerprint,
        "created": study.created_at,
        "bootstrap": f"{report.n_boot} resamples over queries, seed {report.seed}, {CI_LEVEL:.0%} percentile interval",
        "songsim": __version__,
    }


def formulas(report: StudyReport) -> list[tuple[str, str]]:
    """(figure, definition) of every figure, with this study's K and θ filled in."""
    k, theta = report.k, report.study.relevance_threshold
    return [
        ("relevance", "rel(q, c) = mean over raters of their latest BROAD grade (0 not / 1 somewhat / 2 very similar) "
         "for candidate c of query q; FINE(q, c) = mean of their FINE scores (0–100) where given. A candidate in a "
         "space's top K that no one has rated counts as non-relevant (rel = 0) and lowers judged@K."),
        ("queries", "Every figure is the mean over the study's queries with at least one rating (unrated queries "
         "are left out); each figure's number of queries is n_queries (reference_n_queries for overlap@n and "
         "edit_distance@n, which also leave out the queries whose reference list is empty)."),
        (f"ndcg@{k}", f"DCG@{k} = Σ_{{i=1..min({k}, n)}} (2^rel_i − 1) / log2(i + 1) over the space's ranked "
         f"candidates; NDCG@{k} = DCG@{k} / IDCG@{k}, with IDCG@{k} the DCG@{k} of all rated candidates of the "
         f"query (from every space's run) sorted by rel: one ideal for every space, so spaces are comparable. "
         f"NDCG = 0 on a query where no rated candidate has rel > 0."),
        ("ndcg@1", "NDCG@1: the same at cut-off 1 (the first candidate against the best rated one)."),
        (f"ndcg_linear@{k}", f"NDCG@{k} with linear gain rel_i instead of 2^rel_i − 1 (Järvelin & Kekäläinen "
         f"2002; scikit-learn's ndcg_score)."),
        ("relevant", f"binary relevance: rel(q, c) ≥ θ = {theta:g}; unrated candidates are not relevant."),
        (f"p@{k}", f"P@{k} = (relevant candidates among the top {k}) / {k}."),
        ("map", f"AP = (1/R) Σ_{{i ≤ {k}}} relevant_i · P@i, with R = the number of relevant rated candidates in "
         f"the query's pool (all spaces' runs): relevant candidates a space did not retrieve count with precision "
         f"0, so AP < 1 when R > {k}; AP = 0 when R = 0. MAP = mean AP over queries."),
        ("fine", f"mean FINE(q, c) over the rated candidates of the top {k} that have a FINE score, then over "
         f"queries (queries without any are left out)."),
        (f"judged@{k}", f"share of the space's top {k} (of the candidates its run has) rated by at least one rater."),
        *_reference_formulas(report),
        ("CI", f"{CI_LEVEL:.0%} percentile bootstrap over queries: {report.n_boot} resamples of the queries with "
         f"replacement (seed {report.seed}), the mean recomputed on each; the interval is their {50 * (1 - CI_LEVEL):g}th and "
         f"{100 - 50 * (1 - CI_LEVEL):g}th percentiles. Every space is resampled on the same queries."),
        ("Friedman", f"Friedman test on the per-query NDCG@{k} of every space, over the queries every space has: "
         f"ranks within each query, tie-corrected χ² with S − 1 degrees of freedom (needs S ≥ 3 spaces)."),
        ("pairwise", f"Wilcoxon signed-rank test (two-sided) of the per-query NDCG@{k} differences of each pair of "
         f"spaces over the queries both have (zero differences dropped; all zero: p = 1; exact up to "
         f"{EXACT_WILCOXON_MAX_N} untied differences, else the tie-corrected normal approximation), p adjusted with Holm's "
         f"step-down p'_(i) = max_{{j ≤ i}} min(1, (m − j + 1) p_(j)) over the m tested pairs. "
         f"mean difference = mean(row − column)."),
        ("Krippendorff's α", "ordinal α on BROAD over the pairs rated by ≥ 2 raters: α = 1 − (n − 1) Σ o_ck δ²_ck / "
         "Σ n_c n_k δ²_ck, with o the coincidence matrix (each pair's m_u ratings contribute their ordered "
         "rater-to-rater value pairs / (m_u − 1)), n_c its margins, n = Σ n_c and δ²_ck = (Σ_{g=c..k} n_g − "
         "(n_c + n_k)/2)². 1 = perfect, 0 = chance agreement."),
        ("FINE correlation", "Pearson r of FINE between each two raters over the pairs both scored (≥ 3, both "
         "varying), averaged over those rater pairs; n = the co-scored pairs."),
        (f"ceiling_ndcg@{k}", f"for each rater and query: rank the candidates that the rater and at least one other "
         f"rater rated by the rater's BROAD (ties by their FINE when they scored all of them; remaining ties "
         f"averaged over every order, McSherry & Najork 2008) and score NDCG@{k} with the other raters' mean BROAD "
         f"as rel (ideal over the same candidates; 0 when none is relevant to the others); averaged over every "
         f"(rater, query). It is how well one listener predicts the others: a space near or above it predicts the "
         f"panel as well as a listener does, and differences between spaces up there are within rater "
         f"disagreement."),
        ("labels", f"label-based figures of the same spaces (songsim.evaluate: a neighbour is relevant when it "
         f"shares the query's genre or emotion; for its overlap@n and edit_distance@n, n = 3, 5, 10, the reference "
         f"list is the query's same-album, then same-artist songs) and their plain Spearman ρ with human NDCG@{k} "
         f"across spaces (needs ≥ 3 spaces). edit_distance@n is lower-is-better, so there agreement with the "
         f"listeners shows as ρ < 0."),
    ]


def _reference_formulas(report: StudyReport) -> list[tuple[str, str]]:
    """The definitions of the figures against the panel's reference list."""
    k, theta = report.k, report.study.relevance_threshold
    ns = [n for n in REFERENCE_NS if n <= k]
    shown = ", ".join(map(str, ns)) if ns else f"none: every n of {', '.join(map(str, REFERENCE_NS))} exceeds K = {k}"
    return [
        ("panel reference", f"the reference list of query q = its rated candidates with rel(q, c) ≥ θ = {theta:g}, "
         f"ordered by rel descending, ties by FINE descending (candidates without FINE after those with one), "
         f"then by candidate id. It is the panel's own ranking of the pooled candidates; a query with an empty "
         f"reference list (no relevant candidate) is left out of overlap@n and edit_distance@n. Reported for "
         f"n ∈ {{3, 5, 10}} with n ≤ K (a run holds K candidates): n = {shown}. The artist-similarity protocol of "
         f"the siamese work, as in songsim.evaluate."),
        ("overlap@n", "O@n = |ref_{1..n} ∩ run_{1..n}| / |ref_{1..n}|: the share of the reference top n found in "
         "the space's top n, in any order (a reference shorter than n is scored on what it has, so 1 is "
         "reachable). 1 = all found; higher is better."),
        ("edit_distance@n", "NED@n = lev(ref_{1..m}, run_{1..m}) / m with m = min(n, |ref|, |run|) and lev the "
         "Levenshtein distance (insertions, deletions, substitutions of one candidate, each costing 1): 0 = the "
         "same candidates in the same order, 1 = none in place (also for an empty run). Lower is better; no test "
         "or ranking of spaces in this report uses it."),
    ]


def display_spaces(report: StudyReport) -> pd.DataFrame:
    """The per-space table for people: ``value [low, high]`` per figure, queries used."""
    k = report.k
    rows = []
    for space, summary in report.spaces.items():
        row = {"space": space}
        for figure in figure_names(k):
            ci = summary[f"{figure}_ci"]
            digits = 1 if figure == "fine" else 3
            row[figure] = _fmt(summary[figure], digits) + (f" [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]" if ci else "")
        row["queries"] = summary["n_queries"][f"ndcg@{k}"]
        rows.append(row)
    return pd.DataFrame(rows, columns=["space", *figure_names(k), "queries"])


def display_reference(report: StudyReport) -> pd.DataFrame:
    """The per-space table of the figures against the panel's reference list for people:
    ``value [low, high]`` per figure (edit distance marked lower-is-better) and the
    queries used; no figure columns when K < 3."""
    names = report.reference_figures
    headers = {f: f"{f} (↓ better)" if lower_is_better(f) else f for f in names}
    rows = []
    for space, summary in report.spaces.items():
        row: dict[str, Any] = {"space": space}
        for figure in names:
            ci = summary[f"{figure}_ci"]
            row[headers[figure]] = _fmt(summary[figure]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
        row["queries"] = summary["reference_n_queries"][names[0]] if names else 0
        rows.append(row)
    return pd.DataFrame(rows, columns=["space", *headers.values(), "queries"])


def display_matrix(report: StudyReport, key: str) -> pd.DataFrame:
    """A pairwise matrix (``p``, ``p_holm``, ``mean_difference``, ``n``) for people."""
    cells = report.pairwise[key]
    show = _fmt_p if key.startswith("p") else (lambda v: _fmt(v, 3))
    return pd.DataFrame({b: {a: ("" if a == b else show(cells[a][b])) for a in cells} for b in cells})


def summary_lines(report: StudyReport) -> list[str]:
    """Friedman, agreement and label correlation in sentences."""
    k, friedman, agreement = report.k, report.friedman, report.agreement
    lines = []
    if friedman["p"] is None:
        lines.append(f"Friedman test: not run — {friedman['reason']}.")
    else:
        detail = "" if friedman["statistic"] is None else f"χ² = {friedman['statistic']:.2f}, "
        lines.append(
            f"Friedman test on ndcg@{k}: {detail}{_p_clause(friedman['p'])} "
            f"({friedman['n_queries']} queries × {friedman['n_spaces']} spaces)"
            + (f" — {friedman['reason']}" if friedman["reason"] else "")
            + "."
        )
    reasons = agreement["reasons"]
    alpha = agreement["krippendorff_alpha"]
    lines.append(
        f"Krippendorff's α (ordinal, BROAD) = {_fmt(alpha)} over {agreement['alpha_n_pairs']} pairs rated twice or more."
        if alpha is not None else f"Krippendorff's α: — ({reasons['krippendorff_alpha']})."
    )
    r = agreement["fine_correlation"]
    lines.append(
        f"FINE correlation (mean Pearson r) = {_fmt(r)} over {agreement['fine_correlation_n']} co-scored pairs "
        f"({agreement['fine_correlation_rater_pairs']} rater pair(s))."
        if r is not None else f"FINE correlation: — ({reasons['fine_correlation']})."
    )
    ceiling_key = f"ceiling_ndcg@{k}"
    lines.append(
        f"Ceiling (one rater against the others' mean) = {_fmt(report.ceiling)} NDCG@{k} over "
        f"{agreement['ceiling_n']} (rater, query) cells."
        if report.ceiling is not None else f"Ceiling: — ({reasons[ceiling_key]})."
    )
    if not report.reference_figures:
        lines.append(
            f"Top-n overlap and edit distance against the panel's reference list: not reported — they need "
            f"n ≤ K with n in {', '.join(map(str, REFERENCE_NS))}, and this study's K is {k}."
        )
    not_computed: dict[str, list[str]] = {}  # reason → the figures it applies to, said once
    for name, entry in report.labels["spearman"].items():
        if entry["rho"] is None:
            not_computed.setdefault(entry["reason"], []).append(name)
            continue
        direction = " (lower is better: agreement shows as ρ < 0)" if entry.get("lower_is_better") else ""
        lines.append(
            f"Spearman ρ({name}, human ndcg@{k}) = {_fmt(entry['rho'])}, {_p_clause(entry['p'])}, "
            f"n = {entry['n']} spaces{direction}."
        )
    for reason, names in not_computed.items():
        lines.append(f"Spearman ρ(label figure, human ndcg@{k}): — for {', '.join(names)} ({reason}).")
    lines += report.labels["notes"]
    return lines


def reference_caption(report: StudyReport) -> str:
    """One line naming the panel's reference list, for the table of :func:`display_reference`."""
    return (
        f"Against the panel's reference list (candidates with mean BROAD ≥ θ = {report.study.relevance_threshold:g}, "
        f"by mean BROAD then FINE; {CI_LEVEL:.0%} bootstrap CI; queries with an empty list left out)"
    )


def format_text(report: StudyReport) -> str:
    """The report for a terminal: settings, per-space table with CIs, tests, agreement,
    label correlation, problems, definitions."""
    lines = [f"{key}: {value}" for key, value in settings(report).items()] + [""]
    lines += [display_spaces(report).to_string(index=False), ""]
    if report.reference_figures:
        lines += [reference_caption(report) + ":", display_reference(report).to_string(index=False), ""]
    lines += summary_lines(report)
    if len(report.spaces) > 1:
        lines += ["", f"Pairwise Wilcoxon on ndcg@{report.k}, Holm-adjusted p (row vs column):",
                  display_matrix(report, "p_holm").to_string(),
                  "Mean difference (row − column):", display_matrix(report, "mean_difference").to_string()]
    lines += ["", "Raters:", report.raters.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
    if len(report.labels_table):
        lines += ["", "Label-based figures:", report.labels_table.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
    lines += ["", "Problems:" if report.problems else "Problems: none."] + [f"  - {p}" for p in report.problems]
    lines += ["", "Definitions:"] + [f"  {name}: {text}" for name, text in formulas(report)]
    return "\n".join(lines)


def bars_figure(report: StudyReport, metric: str | None = None) -> go.Figure:
    """Per-space bars of ``metric`` (default NDCG@K; any of
    :func:`~songsim.studies.report.figure_names` or
    :func:`~songsim.studies.report.reference_figure_names`) with CI whiskers; for NDCG@K the
    rater-agreement ceiling is a dashed horizontal line. The title says when lower is better."""
    metric = metric or f"ndcg@{report.k}"
    spaces = list(report.spaces)
    values = np.array([json_scalar(report.spaces[s][metric]) for s in spaces], dtype=np.float64)
    cis = np.array([report.spaces[s][f"{metric}_ci"] or (np.nan, np.nan) for s in spaces], dtype=np.float64).reshape(-1, 2)
    figure = go.Figure(
        go.Bar(
            x=spaces, y=values, name=metric, marker_color="#3a6ea5",
            text=[_fmt(v) for v in values], textposition="outside",
            error_y=dict(type="data", symmetric=False, array=cis[:, 1] - values, arrayminus=values - cis[:, 0]),
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    if metric == f"ndcg@{report.k}" and report.ceiling is not None:
        figure.add_hline(
            y=report.ceiling, line_dash="dash", line_color="#d7263d",
            annotation_text=f"rater ceiling {report.ceiling:.2f}", annotation_position="top left",
        )
    top = 100.0 if metric == "fine" else 1.05
    direction = ", lower is better" if lower_is_better(metric) else ""
    figure.update_layout(
        height=380, margin=dict(l=10, r=10, t=40, b=10), showlegend=False,
        title=f"{metric} by space ({CI_LEVEL:.0%} bootstrap CI over queries{direction})",
        yaxis=dict(title=metric, range=[0, top]),
    )
    return figure


def heatmap_figure(report: StudyReport, metric: str | None = None) -> go.Figure:
    """Per-query ``metric`` (default NDCG@K) as a heatmap: queries (rows, study order) ×
    spaces (columns); a blank cell is a query the space has no value for. The bright end of
    the scale is always the better one (reversed for a lower-is-better figure)."""
    metric = metric or f"ndcg@{report.k}"
    matrix = report.per_query.pivot(index="query_id", columns="space", values=metric)
    order = [q.query_id for q in report.study.queries]
    matrix = matrix.reindex(index=[q for q in order if q in matrix.index], columns=list(report.spaces))
    zmax = 100.0 if metric == "fine" else 1.0
    figure = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(), x=list(matrix.columns), y=list(matrix.index), zmin=0, zmax=zmax,
            colorscale="Viridis_r" if lower_is_better(metric) else "Viridis", colorbar=dict(title=metric),
            hovertemplate="query %{y}<br>%{x}: %{z:.3f}<extra></extra>",
        )
    )
    figure.update_layout(
        height=int(min(max(120 + 18 * len(matrix), 320), 1600)), margin=dict(l=10, r=10, t=40, b=10),
        title=f"{metric} per query", yaxis=dict(autorange="reversed", title="query"),
    )
    return figure


def write_html(report: StudyReport, path: str | Path) -> Path:
    """Write one self-contained HTML report (plotly.js inlined, no network needed):
    settings, problems, figures, tables, tests, agreement, labels and every definition.
    Returns the path."""

    def table(frame: pd.DataFrame, *, index: bool = False) -> str:
        return frame.to_html(index=index, na_rep="—", float_format=lambda v: f"{v:.3f}", border=0, classes="t")

    def items(lines: Sequence[str]) -> str:
        return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"

    settings_table = pd.DataFrame(list(settings(report).items()), columns=["setting", "value"])
    pairwise = "".join(
        f"<h3>{html.escape(title)}</h3>" + table(display_matrix(report, key), index=True)
        for key, title in [("p_holm", "Holm-adjusted p"), ("p", "raw p"),
                           ("mean_difference", "mean difference (row − column)"), ("n", "queries")]
    ) if len(report.spaces) > 1 else "<p>One space: nothing to compare.</p>"
    definitions = "".join(f"<dt>{html.escape(name)}</dt><dd>{html.escape(text)}</dd>" for name, text in formulas(report))
    body = [
        f"<h1>Listening study {html.escape(report.study.name)}</h1>",
        "<h2>Settings</h2>", table(settings_table),
        "<h2>Problems</h2>", items(report.problems) if report.problems else "<p>None.</p>",
        f"<h2>NDCG@{report.k} by space</h2>", bars_figure(report).to_html(full_html=False, include_plotlyjs=True),
        "<h2>Per space</h2>", table(display_spaces(report)),
        *(["<h2>Against the panel's reference list</h2>", f"<p>{html.escape(reference_caption(report))}.</p>",
           table(display_reference(report))] if report.reference_figures else []),
        "<h2>Per query</h2>", heatmap_figure(report).to_html(full_html=False, include_plotlyjs=False),
        "<h2>Significance and agreement</h2>", items(summary_lines(report)),
        f"<h2>Pairwise tests (ndcg@{report.k})</h2>", pairwise,
        "<h2>Raters</h2>", table(report.raters),
        "<h2>Label-based figures</h2>", table(report.labels_table) if len(report.labels_table) else "<p>Not computed.</p>",
        "<h2>Definitions</h2>", f"<dl>{definitions}</dl>",
    ]
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table.t{border-collapse:collapse;margin:.5em 0}table.t td,table.t th{padding:.2em .6em;"
        "border-bottom:1px solid #ddd;text-align:right}table.t td:first-child{text-align:left}"
        "dt{font-weight:bold;margin-top:.6em}"
    )
    document = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>songsim study {html.escape(report.study.name)}"
        f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    path = Path(path)
    with atomic_write(path) as handle:
        handle.write(document.encode("utf-8"))
    return path
