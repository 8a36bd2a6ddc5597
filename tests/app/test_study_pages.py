"""The panel-study pages as the owner and the raters drive them, through Streamlit's AppTest:
create a study, sign in, rate everything (progress to 100 %), refresh and resume, the report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from songsim.studies.identity import invite, revoke
from songsim.studies.panel import open_session
from songsim.studies.ratings import Rating, append_rating, latest_ratings, load_ratings
from songsim.studies.study import create_study, list_studies, load_study

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture(scope="module")
def catalogue_dir(built_catalogue, tmp_path_factory) -> Path:
    """A private copy of the built catalogue: studies and ratings are written into it."""
    return Path(shutil.copytree(built_catalogue, tmp_path_factory.mktemp("app-studies") / "catalogue"))


def open_page(catalogue_dir, monkeypatch, page: str, *, query_params: dict | None = None, secrets: dict | None = None) -> AppTest:
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(catalogue_dir))
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params.update(query_params or {})
    at.secrets.update(secrets or {})
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def progress_text(at) -> str:
    return at.get("progress")[0].proto.text


def test_owner_creates_a_study_with_the_form(catalogue_dir, monkeypatch):
    at = open_page(catalogue_dir, monkeypatch, "pages/studies.py")
    assert at.title[0].value == "Studies"
    at.text_input[0].set_value("form-study")
    at.multiselect[0].set_value(["handcrafted", "random"])
    at.number_input[0].set_value(3)  # k
    at.number_input[1].set_value(4)  # queries
    at.button[0].click().run()  # "Create study"
    assert not at.exception and not at.error, [e.value for e in at.error]
    study = load_study(catalogue_dir, "form-study")
    assert study.spaces == ["handcrafted", "random"] and study.k == 3 and len(study.queries) == 4
    assert "form-study" in at.dataframe[0].value["study"].tolist()


def test_owner_sees_a_bad_name_explained(catalogue_dir, monkeypatch):
    at = open_page(catalogue_dir, monkeypatch, "pages/studies.py")
    at.text_input[0].set_value("no spaces allowed")
    at.button[0].click().run()
    assert "is not usable" in at.error[0].value
    assert "no spaces allowed" not in list_studies(catalogue_dir)


def rate_current_query(at, grades) -> AppTest:
    """Play and rate every candidate of the query on screen; returns the app after the last save."""
    n = len([b for b in at.button if b.label.startswith("▶ Play candidate")])
    for i in range(n):
        play = next(b for b in at.button if b.label.startswith("▶ Play candidate"))
        play.click().run()
        radio = next(r for r in at.radio if not r.disabled and r.value is None)
        radio.set_value(grades[i % len(grades)])
        save = next(b for b in at.button if b.label == "Save rating" and not b.disabled)
        save.click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def test_rater_signs_in_rates_everything_and_resumes_after_a_refresh(catalogue_dir, monkeypatch):
    study = create_study(catalogue_dir, "rate-all", ["handcrafted", "random"], n_queries=2, k=2, raters_per_pair=1, panel_size=1)
    at = open_page(catalogue_dir, monkeypatch, "pages/rate.py")
    at.selectbox[0].set_value("rate-all")
    at.text_input[0].set_value("ada")
    next(b for b in at.button if b.label == "Start rating").click().run()
    assert not at.exception
    assert progress_text(at) == f"0 of {study.n_pairs} pairs rated"
    # blind: neither space names nor track ids on the page
    shown = " ".join(m.value for m in at.markdown)
    assert "handcrafted" not in shown and not any(c in shown for q in study.queries for c in q.pool)
    # a candidate cannot be rated before it is played
    assert all(r.disabled for r in at.radio)

    queue = open_session(catalogue_dir, "rate-all", "ada").queue
    assert len(queue) == 2
    rate_current_query(at, [2, 0, 1])
    assert progress_text(at) == f"{len(queue[0].candidates)} of {study.n_pairs} pairs rated"

    # refresh: a new session with the same URL (and its token) resumes at the first unrated query
    url = {key: at.query_params[key] for key in ("study", "rater", "token")}
    assert url["rater"] == "ada" and len(url["token"]) >= 40
    again = open_page(catalogue_dir, monkeypatch, "pages/rate.py", query_params=url)
    assert progress_text(again) == f"{len(queue[0].candidates)} of {study.n_pairs} pairs rated"
    assert not any(b.label == "Start rating" for b in again.button)
    assert any(m.value.startswith("**Query 2 of 2**") for m in again.markdown)
    rate_current_query(again, [1])
    assert progress_text(again) == f"{study.n_pairs} of {study.n_pairs} pairs rated"
    assert any("rated every pair" in s.value for s in again.success)
    latest = latest_ratings(load_ratings(catalogue_dir, study="rate-all").events)
    assert len(latest) == study.n_pairs and set(latest["rater"]) == {"ada"}


def test_passcode_guards_the_study_and_the_url_token_resumes(catalogue_dir, monkeypatch):
    create_study(catalogue_dir, "locked", ["handcrafted"], n_queries=1, k=2, raters_per_pair=1, panel_size=1)
    secrets = {"study_passcodes": {"locked": "open-sesame"}}
    at = open_page(catalogue_dir, monkeypatch, "pages/rate.py", secrets=secrets)
    at.selectbox[0].set_value("locked").run()
    at.text_input[0].set_value("bob")
    at.text_input[1].set_value("wrong")
    next(b for b in at.button if b.label == "Start rating").click().run()
    assert "not the passcode" in at.error[0].value and not at.get("progress")
    at.text_input[1].set_value("open-sesame")
    next(b for b in at.button if b.label == "Start rating").click().run()
    assert not at.error and progress_text(at).endswith("pairs rated")

    url = {key: at.query_params[key] for key in ("study", "rater", "token")}
    resumed = open_page(catalogue_dir, monkeypatch, "pages/rate.py", query_params=url, secrets=secrets)
    assert progress_text(resumed).endswith("pairs rated")


def test_a_url_with_another_raters_name_cannot_revise_their_ratings(catalogue_dir, monkeypatch):
    """Issue 13: any session could open /?study=pilot&rater=alice and revise alice's ratings."""
    from pages.common import passcode_attempts

    passcode_attempts.clear()
    create_study(catalogue_dir, "named", ["handcrafted"], n_queries=1, k=2, raters_per_pair=1, panel_size=1)
    name, token = invite(catalogue_dir, "named", "alice")
    for params in ({"study": "named", "rater": "alice"}, {"study": "named", "rater": "alice", "token": "guess"},
                   {"study": "named", "rater": "Alice ", "token": ""}):  # fmt: skip
        at = open_page(catalogue_dir, monkeypatch, "pages/rate.py", query_params=params)
        assert not at.get("progress") and any(b.label == "Start rating" for b in at.button)
        at.text_input[0].set_value("ALICE")  # nor can the sign-in form take the name over
        next(b for b in at.button if b.label == "Start rating").click().run()
        assert "already taken" in at.error[-1].value and not at.get("progress")
    own = open_page(catalogue_dir, monkeypatch, "pages/rate.py", query_params={"study": "named", "rater": "alice", "token": token})
    assert progress_text(own).endswith("pairs rated")
    passcode_attempts.clear()


def test_wrong_tokens_are_rate_limited_like_passcodes(catalogue_dir, monkeypatch):
    from pages.common import passcode_attempts

    passcode_attempts.clear()
    monkeypatch.setattr("pages.common.client_address", lambda: "10.0.0.7")
    create_study(catalogue_dir, "guarded", ["handcrafted"], n_queries=1, k=2, raters_per_pair=1, panel_size=1)
    _, token = invite(catalogue_dir, "guarded", "alice")
    for attempt in range(5):
        at = open_page(catalogue_dir, monkeypatch, "pages/rate.py", query_params={"study": "guarded", "rater": "alice", "token": f"guess-{attempt}"})
        expected = "does not sign you in" if attempt < 4 else "Too many wrong"  # the fifth locks the address out
        assert expected in at.error[0].value, attempt
        at.run()  # a rerun is not another attempt
    right = open_page(catalogue_dir, monkeypatch, "pages/rate.py", query_params={"study": "guarded", "rater": "alice", "token": token})
    assert "Too many wrong" in right.error[0].value and not right.get("progress")
    passcode_attempts.clear()
    right = open_page(catalogue_dir, monkeypatch, "pages/rate.py", query_params={"study": "guarded", "rater": "alice", "token": token})
    assert progress_text(right).endswith("pairs rated")


def test_an_invitation_only_study_takes_only_live_invitation_links(catalogue_dir, monkeypatch):
    create_study(catalogue_dir, "invited", ["handcrafted"], n_queries=1, k=2, raters_per_pair=1, panel_size=1)
    at = open_page(catalogue_dir, monkeypatch, "pages/studies.py")
    at.selectbox(key="study-details").set_value("invited").run()
    at.toggle(key="invitation-only:invited").set_value(True).run()
    assert not at.exception and load_study(catalogue_dir, "invited").invitation_only
    invite_box = next(t for t in at.text_input if t.label.startswith("Invite a rater"))
    invite_box.set_value("dana")
    next(b for b in at.button if b.label == "Make link").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    link = at.code[0].value
    assert "/rate?study=invited&rater=dana&token=" in link
    token = link.rsplit("token=", 1)[1]

    refused = open_page(catalogue_dir, monkeypatch, "pages/rate.py", query_params={"study": "invited"})
    assert "by invitation only" in refused.info[-1].value and not any(b.label == "Start rating" for b in refused.button)
    welcome = open_page(catalogue_dir, monkeypatch, "pages/rate.py", query_params={"study": "invited", "rater": "dana", "token": token})
    assert progress_text(welcome).endswith("pairs rated")
    revoke(catalogue_dir, "invited", "dana")
    gone = open_page(catalogue_dir, monkeypatch, "pages/rate.py", query_params={"study": "invited", "rater": "dana", "token": token})
    assert not gone.get("progress") and "does not sign you in" in gone.error[0].value
    from pages.common import passcode_attempts

    passcode_attempts.clear()


def test_the_owner_removes_a_rater_on_the_studies_page(catalogue_dir, monkeypatch):
    study = create_study(catalogue_dir, "pruned", ["handcrafted", "random"], n_queries=2, k=2, raters_per_pair=1, panel_size=2)
    for rater in ("ann", "bo"):
        invite(catalogue_dir, "pruned", rater)
        session = open_session(catalogue_dir, "pruned", rater)
        session.save(session.queue[0].query_id, session.queue[0].candidates[0], broad=1)
    at = open_page(catalogue_dir, monkeypatch, "pages/studies.py")
    at.selectbox(key="study-details").set_value("pruned").run()
    at.selectbox(key="rater-pick:pruned").set_value("bo").run()
    at.button(key="remove:pruned").click().run()
    assert not at.exception and "Removed bo" in at.success[0].value
    after = load_study(catalogue_dir, "pruned")
    assert "bo" in after.removed_raters
    assert len(open_session(catalogue_dir, "pruned", "ann").queue) and sum(
        len(i.candidates) for i in open_session(catalogue_dir, "pruned", "ann").queue
    ) == study.n_pairs  # ann now has every pair


def test_report_page_shows_the_figures_and_changes_with_a_rating(catalogue_dir, monkeypatch):
    study = create_study(catalogue_dir, "reported", ["handcrafted", "random"], n_queries=3, k=2, raters_per_pair=1, panel_size=1)
    first = study.queries[0]
    for rank, candidate in enumerate(first.runs["handcrafted"]):
        append_rating(catalogue_dir, Rating("reported", "cy", first.query_id, candidate, broad=2), study=study)
    at = open_page(catalogue_dir, monkeypatch, "pages/report.py")
    at.selectbox[0].set_value("reported").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("space")
    assert table.loc["handcrafted", "ndcg@2"].startswith("1.000")
    assert len(at.get("plotly_chart")) == 2
    assert [b.label for b in at.get("download_button")] == ["Report (JSON)", "Tables (CSV, zip)", "Report (HTML, self-contained)"]

    for candidate in first.runs["handcrafted"]:
        append_rating(catalogue_dir, Rating("reported", "cy", first.query_id, candidate, broad=0), study=study)
    at.run()
    assert not at.dataframe[0].value.set_index("space").loc["handcrafted", "ndcg@2"].startswith("1.000")


def test_report_page_shows_overlap_with_the_panels_reference_list(catalogue_dir, monkeypatch):
    study = create_study(catalogue_dir, "overlap", ["handcrafted", "random"], n_queries=1, k=3, raters_per_pair=1, panel_size=1)
    query = study.queries[0]
    for candidate in query.runs["handcrafted"]:  # the panel agrees with handcrafted's top-3
        append_rating(catalogue_dir, Rating("overlap", "cy", query.query_id, candidate, broad=2), study=study)
    at = open_page(catalogue_dir, monkeypatch, "pages/report.py")
    at.selectbox[0].set_value("overlap").run()
    assert not at.exception, at.exception
    assert "Top-n overlap and edit distance against the panel's reference list" in [h.value for h in at.subheader]
    reference = at.dataframe[1].value.set_index("space")
    overlap = next(c for c in reference.columns if c.startswith("overlap@3"))
    assert str(reference.loc["handcrafted", overlap]).startswith("1.000")


def test_owner_passcode_keeps_raters_on_the_rating_page(catalogue_dir, monkeypatch):
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(catalogue_dir))
    at = AppTest.from_file(APP, default_timeout=180)
    at.secrets["owner_passcode"] = "only-the-owner"
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Listen & rate"  # a rater's session opens on the rating page
    assert not at.sidebar.selectbox  # no space selector: it would list the compared spaces
    with pytest.raises(ValueError, match="Known pages"):  # the owner's pages are not registered
        at.switch_page("pages/studies.py")

    at.session_state["owner_passcode"] = "guess"
    at.run()
    assert at.title[0].value == "Listen & rate" and not at.sidebar.selectbox
    at.session_state["owner_passcode"] = "only-the-owner"  # what the Owner sign-in page stores
    at.run()
    at.switch_page("pages/studies.py").run()
    assert not at.exception and at.title[0].value == "Studies" and at.dataframe



def test_a_session_from_another_machine_is_a_raters_without_an_owner_passcode(catalogue_dir, monkeypatch):
    """Issue 13: without ``owner_passcode`` every session had the owner's pages (Catalogue
    reads and writes server files; Studies shows which space proposed which candidate)."""
    monkeypatch.setattr("pages.common.client_address", lambda: "192.168.1.23")
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(catalogue_dir))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Listen & rate" and not at.sidebar.selectbox
    for page in ("pages/studies.py", "pages/catalogue.py", "pages/models.py", "pages/explore.py", "pages/report.py"):
        with pytest.raises(ValueError, match="Known pages"):
            at.switch_page(page)
    sign_in = AppTest.from_function(_owner_sign_in, default_timeout=60)
    sign_in.run()
    assert not sign_in.text_input and "set `owner_passcode" in sign_in.warning[0].value

    monkeypatch.setattr("pages.common.client_address", lambda: "127.0.0.1")  # the same app on the laptop
    local = AppTest.from_file(APP, default_timeout=180)
    local.run()
    local.switch_page("pages/studies.py").run()
    assert not local.exception and local.title[0].value == "Studies"


def test_wrong_owner_passcodes_are_rate_limited(monkeypatch):
    """Issue 13: 30 wrong passcodes in 29 s, then the right one worked."""
    from pages.common import passcode_attempts

    passcode_attempts.clear()
    monkeypatch.setattr("pages.common.client_address", lambda: "10.0.0.9")
    sign_in = AppTest.from_function(_owner_sign_in, default_timeout=60)
    sign_in.secrets["owner_passcode"] = "only-the-owner"
    sign_in.run()
    for attempt in range(4):
        sign_in.text_input(key="owner-passcode-input").input(f"guess-{attempt}").run()
        assert "not the owner passcode" in sign_in.error[0].value
    sign_in.run().run()  # a rerun is not another attempt
    sign_in.text_input(key="owner-passcode-input").input("guess-4").run()  # the fifth
    sign_in.run()
    assert not sign_in.text_input and "Too many wrong passcodes" in sign_in.error[0].value
    assert "owner_passcode" not in sign_in.session_state  # the right passcode cannot even be tried now
    passcode_attempts.clear()


def _owner_sign_in():
    from pages.common import require_owner

    require_owner()


def test_a_rater_never_starts_a_build(built_catalogue, tmp_path, monkeypatch):
    """Issue 13: a rater's first visit could start minutes of CPU work (fitting missing maps, a build)."""
    unbuilt = Path(shutil.copytree(built_catalogue, tmp_path / "unbuilt", ignore=shutil.ignore_patterns(".songsim")))
    monkeypatch.setattr("pages.common.client_address", lambda: "192.168.1.23")
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(unbuilt))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert "still preparing this catalogue" in at.info[0].value
    assert not (unbuilt / ".songsim" / "spaces").exists()
