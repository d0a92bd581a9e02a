#!/usr/bin/env bash
# README command 1: set up, then render the bundled sample speech to demo.mp4.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/talkface render assets/sample_speech.wav --emotion happy:0.7 \
  --text "$(cat assets/sample_speech.txt)" --out demo.mp4
