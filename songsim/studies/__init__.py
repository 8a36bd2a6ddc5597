"""Panel listening studies: the study file, the ratings log, the raters' sessions, the report.

Data flows one way, each step a module (callers import the module they need, e.g.
``from songsim.studies.study import create_study``; this package re-exports nothing)::

    study.py        create_study ──▶ <catalogue>/studies/<name>.json
                    (the design: spaces, k, queries drawn stratified by genre, every space's
                    top-k per query pooled blind, R raters per pair out of a panel of P, seed)
                    rater_queue ──▶ a rater's balanced, shuffled, blind queue of pairs
    panel.py        RaterSession: what the Listen & rate page shows one rater (queue, their
                    saved ratings, the audio of each song), study passcodes, the owner's overview
    identity.py     who a rater is: per-rater secret link tokens (sha256 in
                    studies/<name>.raters.json), invitations, self-registration in open
                    studies, revoking, removing a rater (their pairs go to the others)
    ratings.py      append_rating ──▶ <catalogue>/ratings.csv (append-only, locked, fsynced;
                    one row per rating event) ──▶ load_ratings, latest_ratings
    report.py       compute_report / report_from: study + latest ratings ──▶ StudyReport
                    (per-query and per-space NDCG@k, MAP, P@k, FINE, judged@k, the panel's
                    reference-list figures; as_dict for JSON, tables / write_csv for CSV)
    statistics.py   bootstrap CIs over queries, Friedman and pairwise Wilcoxon tests with Holm's
                    correction, rater agreement (Krippendorff's alpha, FINE correlation, the
                    ceiling), Spearman's rho of label figures against human NDCG@k
    render.py       StudyReport ──▶ terminal text, self-contained HTML, plotly figures, page
                    tables and the formula of every figure

Imports point one way, down this list: ``ratings`` uses ``study``; ``panel`` uses both;
``identity`` uses ``study`` (and ``ratings`` to remove a rater); ``report`` uses ``study``,
``ratings`` and ``statistics`` (which uses none of them); ``render``
uses ``report`` and ``statistics``. The CLI (``python -m songsim study|rate|report``) and the
Studies, Listen & rate and Report pages are thin callers of these modules.
"""
