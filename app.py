"""tokbench leaderboard: ``streamlit run app.py [-- --reports DIR]`` (or TOKBENCH_REPORTS=DIR).

Reads the run folders that ``tokbench run`` writes and shows them beside the published TokBench leaderboard;
all logic lives in tokbench/leaderboard/.
"""
from tokbench.leaderboard.ui import main

main()
