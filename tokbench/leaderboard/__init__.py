"""The leaderboard app's logic (``app.py`` at the repository root is the Streamlit entry point).

``catalog`` finds and reads report folders, ``published`` holds the TokBench leaderboard rows, ``board``
decides what may be ranked together, ``charts`` draws, ``gallery`` finds and reconstructs the worst
instances, ``ui`` lays the pages out, ``demo`` makes small real reports and ``browser`` drives the app in
headless Chromium (tests and screenshots).
"""
