#!/usr/bin/env bash
# The README's first command: sets everything up (scripts/setup.sh), then animates a sample
# utterance with an emotion and writes what a person can look at to out/demo/:
#   face.mp4 (the robot face speaking, with the audio), contact_sheet.png, frames.csv, speech.wav.
# Arguments override the defaults: bash scripts/demo.sh "Your sentence." happy 3
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
TEXT=${1:-"Hello! My name is Bobby, and I am happy to meet you. Shall we make some pancakes?"}
EMOTION=${2:-happy}
INTENSITY=${3:-2}
export HF_HUB_OFFLINE=1
.venv/bin/talking-face say "$TEXT" --emotion "$EMOTION" --intensity "$INTENSITY" --out out/demo --video
echo "open out/demo/face.mp4 (video with sound) or out/demo/contact_sheet.png"
