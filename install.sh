#!/usr/bin/env bash
# porter's one install step for a fresh machine: the speech synthesisers (Debian) and the Python package.
set -euo pipefail
cd "$(dirname "$0")"
SPEECH_PACKAGES=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox)
if command -v apt-get >/dev/null 2>&1; then
    missing=()
    for p in "${SPEECH_PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
else
    echo "install.sh: no apt-get here; install these yourself: ${SPEECH_PACKAGES[*]}" >&2
fi
# torch is pinned to 2.13.0 in setup.cfg: an unpinned torch would pull a multi-GB CUDA build
python3 -m pip install -q -e '.[dask,test,openvino]'
