#!/usr/bin/env bash
# Install tokbench into .venv from this checkout, with what the embedded data and the tests need.
#   bash scripts/install.sh        # tokbench + evaluators + app
#   bash scripts/install.sh test   # the same plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
extras="all"
[ "${1:-}" = "test" ] && extras="all,test"

# Debian packages: opencv-doc carries real text/face/video sources of the embedded suites; chromium and
# its driver run the leaderboard's browser test. Installed when we are root (or have sudo).
SUDO=""
[ "$(id -u)" != 0 ] && command -v sudo >/dev/null && SUDO="sudo"
if { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; } && command -v apt-get >/dev/null; then
  pkgs="opencv-doc"
  [ "${1:-}" = "test" ] && pkgs="$pkgs chromium chromium-driver fonts-dejavu-core"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
else
  echo "note: cannot install Debian packages (not root); the embedded text-real, face-real and video-clips" \
       "datasets need opencv-doc (or TOKBENCH_OPENCV_DOC_DIR pointing at its unpacked files)" >&2
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -c constraints.txt -e ".[$extras]"
# insightface's wheel carries sample photos used by the embedded face set; only the files are read, so it is
# installed without its dependencies (they would add a second OpenCV distribution)
.venv/bin/pip install -q --no-deps "insightface==2.1"
# docTR (PARSeq, the published TokBench OCR evaluator) likewise: its other needs come with the "doctr" extra
.venv/bin/pip install -q --no-deps "python-doctr==1.1.0"
