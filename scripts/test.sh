#!/usr/bin/env bash
# The project's test command: sets everything up (scripts/setup.sh), then runs the test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k corpus`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_PYTHON_CHECK_FIELDS=1 ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest test/ -q -ra "$@"
