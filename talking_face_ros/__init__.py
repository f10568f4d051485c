"""talking_face_ros: speech + emotion text in, ARKit blendshape animation out.

The generated ROS messages (``talking_face_ros.msg``) are installed by the message build into
the same Python package name in another directory; extending the package path lets both halves
import, whether this folder is imported from the source tree or from an install prefix.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = "0.1.0"
