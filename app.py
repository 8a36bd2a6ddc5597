"""songsim — Streamlit entry point.

    streamlit run app.py                                  # the demo catalogue (built on first start)
    streamlit run app.py -- --catalogue DIR               # your own catalogue (tracks.csv + audio)
    streamlit run app.py -- --home DIR                    # keep the demo and uploads under DIR

The app builds what is missing under a visible progress display, then hands over to the pages.
Every page runs inside one error boundary (below): a ``SongsimError`` or ``OSError`` is shown
with ``st.error`` and its fix (to a rater without server paths), never as a traceback.
The Catalogue page imports folders, shows each build stage and switches this session to another
catalogue; it also opens catalogues that are not built (or not valid) yet, and never builds by itself.
"""

import streamlit as st

from pages.common import (
    APP_RAN_KEY,
    catalogue_root,
    ensure_built,
    is_owner,
    load_catalogue_cached,
    render_sidebar,
    render_sidebar_if_loadable,
    require_owner,
    show_error,
)
from songsim.build import is_built
from songsim.config import single_threaded_blas
from songsim.errors import SongsimError

st.cache_resource(single_threaded_blas)()  # once per process: small products, BLAS threads only add overhead
st.set_page_config(page_title="songsim", page_icon="🎧", layout="wide")
# Declared before anything else so that Streamlit never falls back to listing pages/ itself.
# With an owner passcode set (secrets), a session that has not given it is a rater's: it sees
# only the rating page, so it can never learn which space proposed which candidate.
owner = is_owner()
catalogue_page = st.Page("pages/catalogue.py", title="Catalogue", icon=":material/library_music:")
rate_page = st.Page("pages/rate.py", title="Listen & rate", icon=":material/headphones:", default=not owner)
navigation = st.navigation(
    [
        st.Page("pages/explore.py", title="Explore", icon=":material/explore:", default=True),
        st.Page("pages/models.py", title="Models", icon=":material/model_training:"),
        st.Page("pages/studies.py", title="Studies", icon=":material/science:"),
        rate_page,
        st.Page("pages/report.py", title="Report", icon=":material/bar_chart:"),
        catalogue_page,
    ]
    if owner
    else [rate_page, st.Page(require_owner, title="Owner sign-in", icon=":material/key:", url_path="owner")]
)

st.session_state[APP_RAN_KEY] = True
root, is_demo = catalogue_root()
try:  # the one error boundary: a SongsimError or OSError anywhere below is an st.error, never a traceback
    if navigation.url_path == catalogue_page.url_path:  # manages unbuilt and broken catalogues itself
        st.session_state["catalogue_root"] = str(root)
        render_sidebar_if_loadable(root, is_demo=is_demo)
        navigation.run()
    elif not owner and not is_built(root):  # a rater never starts a build (minutes of CPU anyone could trigger)
        st.info("The study owner is still preparing this catalogue: come back in a few minutes.")
    elif ensure_built(root, is_demo=is_demo):
        st.session_state["catalogue_root"] = str(root)
        if owner:  # a rater gets no space selector: it lists the spaces a study compares
            render_sidebar(load_catalogue_cached(str(root)), is_demo=is_demo)
        navigation.run()
    else:
        st.info("Open the **Catalogue** page (in the menu) to import, rebuild or switch to another catalogue.")
except (SongsimError, OSError) as error:
    show_error(error, owner=owner)
