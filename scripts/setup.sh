#!/usr/bin/env bash
# Makes .venv/ at the repository root a complete prefix for talking_face_ros: Debian packages
# (when run as root), PyTorch 2.13.0 CPU where no torch is present, the Python dependencies,
# the ROS 2 wheels and the message build. Safe to re-run: each step is skipped when its inputs
# have not changed since the last successful run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# Debian packages: espeak-ng (corpus speech), ffmpeg (videos), sox, cmake + g++ (message
# build), pulseaudio (virtual microphone in tests), chromium (browser-face test).
APT_PACKAGES=(espeak-ng libespeak-ng1 ffmpeg sox cmake g++ pulseaudio libportaudio2 chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "warning: missing Debian packages (run as root to install): ${missing[*]}"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV" || {
    [ "$(id -u)" = 0 ] && apt-get install -y -qq python3-venv >/dev/null && "$PY" -m venv "$VENV"
  }
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip install -q)

# torch first and alone: 2.13.0 is the local CPU build; never let a dependency pick a newer one.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  say "installing torch 2.13.0 (CPU)"
  "${PIP[@]}" torch==2.13.0
fi

stamp=$VENV/.talking_face_setup
digest=$(cat requirements.txt constraints.txt setup.py requirements-ros.txt package.xml CMakeLists.txt \
  msg/*.msg scripts/setup.sh scripts/build_ros.sh 2>/dev/null | sha256sum | cut -d' ' -f1)
# The node starts faster with MiniLM exported to ONNX and the emotion phrasings embedded, and runs
# faster with Moonshine converted to ONNX, once,
# into ~/.cache/talking_face_ros (or $TALKING_FACE_CACHE); seconds, and only when missing.
warm_cache() {
  "$VENV/bin/python" -m talking_face_ros.encoders.minilm_onnx --check 2>/dev/null ||
    { say "caching the ONNX export of MiniLM"; "$VENV/bin/python" -m talking_face_ros.encoders.minilm_onnx ||
      say "warning: MiniLM not cached (the node starts slower)"; }
  # Moonshine's encoder converted from .ort to ONNX (a second or two), which onnxruntime optimises fully.
  "$VENV/bin/python" -m talking_face_ros.encoders.moonshine >/dev/null ||
    say "warning: Moonshine not converted to ONNX (the encoder runs about a third slower)"
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
  warm_cache
  say "environment up to date ($VENV)"
  exit 0
fi

say "installing Python dependencies"
"${PIP[@]}" -r requirements.txt -c constraints.txt
# compat mode puts the source tree on sys.path, so the generated messages installed into
# site-packages/talking_face_ros/msg join the source package (pkgutil.extend_path).
"${PIP[@]}" -e . -c constraints.txt --config-settings editable_mode=compat
# Khronos' glTF validator (npm) checks exported .glb files in the tests; optional.
if command -v npm >/dev/null && [ ! -d "$VENV/node_modules/gltf-validator" ]; then
  say "installing gltf-validator (npm)"
  npm install --prefix "$VENV" --no-audit --no-fund --silent gltf-validator@2.0.0-dev.3.10 ||
    say "warning: gltf-validator not installed (its test will be skipped)"
fi
if [ -x scripts/build_ros.sh ] || [ -f scripts/build_ros.sh ]; then
  say "installing ROS 2 wheels and building the messages"
  bash scripts/build_ros.sh "$VENV"
fi
warm_cache
echo "$digest" >"$stamp"
say "done: $VENV"
