#!/usr/bin/env bash
# Rebuilds assets/sample_speech.wav: espeak-ng speech (our own data) after half a second of silence.
# Needs Debian's espeak-ng and sox: apt-get install -y espeak-ng sox
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp/speech.wav" \
  "Hello there. My name is Talking Faces. I can speak, smile, and frown. Papa baked a big blue pie."
sox "$tmp/speech.wav" -r 16000 -c 1 -b 16 assets/sample_speech.wav pad 0.5 0.3
soxi assets/sample_speech.wav
