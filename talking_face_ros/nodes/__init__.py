"""The ROS 2 nodes of talking_face_ros, one module per executable (``main()`` in each).

Kept apart from the rest of the package so that everything else imports without rclpy.
"""


def prepare(executable: str) -> None:
    """Called by each installed node executable before it imports its node's module.

    talking_face_node: its engine process starts now (engine_process.prestart), so that torch
    loads there while this process loads rclpy and the node; cyclic garbage collection pauses
    until the node is ready (``startup_gc``, resumed by its ``main``).
    """
    if executable == "talking_face_node":
        from talking_face_ros import startup_gc
        from talking_face_ros.engine_process import prestart

        startup_gc.pause()
        prestart()
