#!/usr/bin/env bash
# Shared by scripts/demo.sh and scripts/test.sh: Debian packages (as root), the virtual
# environment in .venv, and the project installed into it. Re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# python3-venv: to create the venv; libosmesa6: fast CPU rendering; Mesa EGL/GL: the fallback backend.
APT_PACKAGES="python3-venv libosmesa6 libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri"

missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Debian packages:$missing"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) \
      || echo "warning: apt-get failed; rendering may fall back to EGL" >&2
  else
    echo "Missing Debian packages; install them with: sudo apt-get install -y$missing" >&2
  fi
fi

stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  # torch first and pinned: the CPU wheel; an unpinned torch pulls several GB of CUDA builds.
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi
