"""Pure-Python install of talking_face_ros (``pip install -e .``).

colcon sees package.xml's ament_cmake build type and builds with CMakeLists.txt instead; this
file is what scripts/setup.sh uses for the virtual-environment prefix.
"""
from setuptools import find_packages, setup

setup(
    name="talking_face_ros",
    version="0.1.0",
    description="ROS 2 talking face: speech + emotion text to ARKit blendshape animation",
    license="MIT",
    packages=find_packages(include=["talking_face_ros", "talking_face_ros.*"]),
    package_data={"talking_face_ros": ["assets/*", "assets/**/*", "web/static/*"]},
    python_requires=">=3.10",
    entry_points={"console_scripts": ["talking-face = talking_face_ros.cli:main"]},
)
