"""Point the ROS wheels' CMake export files at this interpreter's Python and numpy headers.

The ROS 2 wheels on PyPI were built in a manylinux container, and the CMake export files of
every message package (``share/<pkg>/cmake/*Export.cmake``) keep that container's include
directories (``/opt/python/cp311-cp311/include/python3.11`` and numpy's include folder under
it). A message build that links against them (rosidl_generator_py) stops with "includes
non-existent path" until they name directories that exist here. Run with the virtual
environment's Python; running it again changes nothing.

    .venv/bin/python scripts/fix_ros_wheel_cmake.py [PREFIX]   # PREFIX defaults to sys.prefix
"""
from __future__ import annotations

import argparse
import re
import sys
import sysconfig
from pathlib import Path

# The build container's interpreter prefix, e.g. /opt/python/cp311-cp311.
_CONTAINER_PREFIX = r"/opt/python/cp3\d+-cp3\d+"
_NUMPY_INCLUDE = re.compile(
    _CONTAINER_PREFIX + r"/lib/python3\.\d+/site-packages/numpy/(?:_core|core)/include")
_PYTHON_INCLUDE = re.compile(_CONTAINER_PREFIX + r"/include/python3\.\d+")


def local_include_dirs() -> tuple[str, str]:
    """(Python include dir, numpy include dir) of the running interpreter."""
    python_include = sysconfig.get_paths()["include"]
    if not (Path(python_include) / "Python.h").is_file():
        raise ValueError(f"{python_include}: no Python.h; install the Python development headers")
    try:
        import numpy
    except ImportError as err:
        raise ValueError(f"numpy is not importable by {sys.executable}: {err}") from err
    return python_include, numpy.get_include()


def fix_file(path: Path, *, python_include: str, numpy_include: str) -> bool:
    """Rewrite one file in place; True when it changed."""
    text = path.read_text(encoding="utf-8")
    # numpy first: its container path starts with the container prefix too.
    fixed = _NUMPY_INCLUDE.sub(lambda _: numpy_include, text)
    fixed = _PYTHON_INCLUDE.sub(lambda _: python_include, fixed)
    if fixed == text:
        return False
    path.write_text(fixed, encoding="utf-8")
    return True


def fix_prefix(prefix: Path) -> list[Path]:
    """Fix every CMake file under PREFIX/share/*/cmake; returns the files that changed."""
    python_include, numpy_include = local_include_dirs()
    changed = []
    for path in sorted(prefix.glob("share/*/cmake/*.cmake")):
        if fix_file(path, python_include=python_include, numpy_include=numpy_include):
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", nargs="?", type=Path, default=Path(sys.prefix),
                        help="install prefix of the ROS wheels (default: this interpreter's)")
    args = parser.parse_args(argv)
    if not (args.prefix / "share").is_dir():
        raise ValueError(f"{args.prefix}: no share/ folder; is this the virtual environment?")
    changed = fix_prefix(args.prefix)
    print(f"fix_ros_wheel_cmake: {len(changed)} CMake export file(s) rewritten under {args.prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
