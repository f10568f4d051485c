#!/usr/bin/env bash
# Reproduce the shipped default model in one command, on the two cores side by side:
#
#   bash scripts/train_default.sh [CORPUS [RUN]]     (defaults: out/corpus-2h, out/runs/default)
#
# 1. the feature cache (Moonshine; shared by everything below);
# 2. at once: stages 1-2 of config/train_default.yaml (VQ-VAE, then code predictor) in RUN, and
#    the refine head's speech branch trained alone as a regression (config/train_default_branch.yaml)
#    in RUN/branch; each takes one core (threads: 1);
# 3. stage 3 (refine head, gate and branch, started from RUN/branch); the bundle is RUN/bundle.
# Logs of step 2's branch go to RUN/branch.log. Copy RUN/bundle to talking_face_ros/assets/default_model to ship it.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-out/corpus-2h}
run=${2:-out/runs/default}
train() { .venv/bin/talking-face train --corpus "$corpus" "$@"; }

train --config config/train_default.yaml --out "$run" --stage features
mkdir -p "$run"
train --config config/train_default_branch.yaml --out "$run/branch" --no-progress > "$run/branch.log" 2>&1 &
branch=$!
train --config config/train_default.yaml --out "$run" --stage 1
train --config config/train_default.yaml --out "$run" --stage 2
echo "waiting for the speech branch (log: $run/branch.log)"
wait "$branch" || { echo "the speech branch failed; see $run/branch.log" >&2; exit 1; }
train --config config/train_default.yaml --out "$run" --stage 3 --set "branch_init=$run/branch"
echo "bundle: $run/bundle"
