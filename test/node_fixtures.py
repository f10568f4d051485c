"""Helpers for the tests that run talking_face_node with real rclpy (imported by the tests; pytest
puts test/ on sys.path). rclpy and the messages are imported on use: the tests skip without them."""
from __future__ import annotations

import gc
import threading
import time


def wait_for(condition, timeout_s: float, what: str):
    """Poll ``condition`` every 20 ms until it is true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.02)


def settle_heap() -> None:
    """For this test process, what the node's executable does once it is ready
    (``talking_face_ros.startup_gc.settle``): the objects made so far leave the cyclic
    collector's sight. In the full suite they are many, and one full collection stops every
    thread here, the nodes' frame timers too: 0.83-0.98 s with 3 million extra dicts in this
    process (a pytest plugin made them to stand in for the suite). ``unsettle_heap`` gives
    them back when the nodes are gone."""
    from talking_face_ros import startup_gc

    gc.collect()
    startup_gc.settle()


def unsettle_heap() -> None:
    gc.unfreeze()


class NodeUnderTest:
    """talking_face_node beside a test node (``tester``) in their own rclpy context, both spun by one
    executor in a background thread once ``spin`` is called; ``frames`` records every frame published.

    Between construction and ``spin`` a test adds its own topics to ``tester`` or swaps the node's engine.
    """

    def __init__(self, folder, *, namespace: str, tester: str, parameters: dict):
        import rclpy
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from talking_face_ros.msg import BlendshapeFrame
        from talking_face_ros.nodes.talking_face_node import TalkingFaceNode

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        overrides = [Parameter(name, value=value)
                     for name, value in {"model": str(folder), "device": "cpu", **parameters}.items()]
        self.node = TalkingFaceNode(context=self.context, namespace=namespace, parameter_overrides=overrides)
        self.tester = rclpy.create_node(tester, namespace=namespace, context=self.context)
        self.frames = []
        # Reliable and deep, so that a stall of this busy test process loses nothing.
        self.tester.create_subscription(BlendshapeFrame, "blendshapes", self.frames.append,
                                        QoSProfile(depth=300, reliability=ReliabilityPolicy.RELIABLE))

    def spin(self):
        from rclpy.executors import SingleThreadedExecutor

        settle_heap()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.tester)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()

    def close(self):
        import rclpy

        self.executor.shutdown()
        self.spinner.join(timeout=5.0)
        self.node.close()
        self.node.destroy_node()
        self.tester.destroy_node()
        unsettle_heap()
        rclpy.shutdown(context=self.context)
