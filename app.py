"""songsim — Streamlit entry point.

    streamlit run app.py                                  # the demo catalogue (built on first start)
    streamlit run app.py -- --catalogue DIR               # your own catalogue (tracks.csv + audio)
    streamlit run app.py -- --home DIR                    # keep the demo and uploads under DIR

The app builds what is missing under a visible progress display, then hands over to the pages.
"""

import streamlit as st

from pages.common import catalogue_root, ensure_built, load_catalogue_cached, render_sidebar
from songsim.config import single_threaded_blas

st.cache_resource(single_threaded_blas)()  # once per process: small products, BLAS threads only add overhead
st.set_page_config(page_title="songsim", page_icon="🎧", layout="wide")
# Declared before anything else so that Streamlit never falls back to listing pages/ itself.
navigation = st.navigation([
    st.Page("pages/explore.py", title="Explore", icon="🎧", default=True),
    st.Page("pages/models.py", title="Models", icon="📊"),
    st.Page("pages/studies.py", title="Studies", icon="🗂️"),
    st.Page("pages/rate.py", title="Listen & rate", icon="🎚️"),
    st.Page("pages/report.py", title="Report", icon="📈"),
])

root, is_demo = catalogue_root()
if ensure_built(root, is_demo=is_demo):
    st.session_state["catalogue_root"] = str(root)
    render_sidebar(load_catalogue_cached(str(root)), is_demo=is_demo)
    navigation.run()
