#!/usr/bin/env bash
# Reproduce the shipped low-latency model (what the ROS node runs by default) in one command:
#
#   bash scripts/train_low_latency.sh [CORPUS [RUN]]     (defaults: out/corpus-2h, out/runs/low_latency)
#
# 0. the causal speech encoder, distilled from the Moonshine features of the default model's
#    feature cache (made first if missing), unless talking_face_ros/assets/causal_speech exists
#    (`talking-face distill-speech`; copy its --out folder there to ship it);
# 1. the feature cache of the causal encoder;
# 2. at once: stages 1-2 of config/train_low_latency.yaml and its refine branch alone as a
#    regression (config/train_low_latency_branch.yaml), one core each;
# 3. stage 3 (refine head, gate and branch, from RUN/branch); the bundle is RUN/bundle.
# Copy RUN/bundle to talking_face_ros/assets/low_latency_model to ship it.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-out/corpus-2h}
run=${2:-out/runs/low_latency}
train() { .venv/bin/talking-face train --corpus "$corpus" "$@"; }

if [ ! -f talking_face_ros/assets/causal_speech/model.safetensors ]; then
    train --config config/train_default.yaml --out "$run/teacher" --stage features
    .venv/bin/talking-face distill-speech --corpus "$corpus" --out "$run/causal_speech" --threads 2
    mkdir -p talking_face_ros/assets/causal_speech
    cp "$run/causal_speech/config.json" "$run/causal_speech/model.safetensors" talking_face_ros/assets/causal_speech/
fi
train --config config/train_low_latency.yaml --out "$run" --stage features
mkdir -p "$run"
train --config config/train_low_latency_branch.yaml --out "$run/branch" --no-progress > "$run/branch.log" 2>&1 &
branch=$!
train --config config/train_low_latency.yaml --out "$run" --stage 1
train --config config/train_low_latency.yaml --out "$run" --stage 2
echo "waiting for the speech branch (log: $run/branch.log)"
wait "$branch" || { echo "the speech branch failed; see $run/branch.log" >&2; exit 1; }
train --config config/train_low_latency.yaml --out "$run" --stage 3 --set "branch_init=$run/branch"
echo "bundle: $run/bundle"
