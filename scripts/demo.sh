#!/usr/bin/env bash
# The README's first command: sets everything up (scripts/setup.sh), then runs the main job: the
# ROS node (talking_face_node, with the shipped default model) animates the bundled sample
# utterance, fed through the real audio topic by wav_publisher with an emotion text; the frames
# it publishes are recorded and rendered. Writes out/demo/: face.mp4 (the robot face speaking,
# with the audio), contact_sheet.png, curves.png, frames.csv, speech.wav.
#   bash scripts/demo.sh "furious"          another emotion text
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
.venv/bin/talking-face demo --emotion "${1:-cheerful and friendly}" --out out/demo
echo "open out/demo/face.mp4 (video with sound) or out/demo/contact_sheet.png"
