"""nodes/spinning.py: a node stops cleanly however a signal's shutdown meets the executor."""
from __future__ import annotations

import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (scripts/build_ros.sh)")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.impl.implementation_singleton import rclpy_implementation  # noqa: E402

from talking_face_ros.nodes import spinning  # noqa: E402


@pytest.fixture
def node():
    context = rclpy.Context()
    rclpy.init(context=context)
    n = rclpy.create_node("spinning_test", context=context)
    yield n
    n.destroy_node()
    rclpy.try_shutdown(context=context)


def test_an_rcl_error_raised_by_the_shutdown_itself_is_a_clean_stop(node, monkeypatch):
    """rclpy raises RCLError, not ExternalShutdownException, when the context is shut while the
    executor builds its wait set (browser_face's SIGTERM test hit it about 1 run in 15)."""
    def racing_step(self, timeout_sec=None):
        rclpy.shutdown(context=node.context)
        raise rclpy_implementation.RCLError("failed to initialize wait set: the given context is not valid")

    monkeypatch.setattr(SingleThreadedExecutor, "spin_once", racing_step)
    spinning.spin_until_shutdown(node)  # returns, no error


def test_an_rcl_error_while_the_context_lives_is_raised(node, monkeypatch):
    def failing_step(self, timeout_sec=None):
        raise rclpy_implementation.RCLError("something else went wrong")

    monkeypatch.setattr(SingleThreadedExecutor, "spin_once", failing_step)
    with pytest.raises(RuntimeError, match="something else"):
        spinning.spin_until_shutdown(node)


def test_a_missed_wake_up_delays_the_stop_by_one_step_at_most(node, monkeypatch):
    """The rarer race: the shutdown's wake-up is lost and rclpy.spin, which waits without a
    time limit, never returns (1 SIGTERM in 40 here). Each step here is deaf to the shutdown;
    the node still stops within a step of it."""
    monkeypatch.setattr(spinning, "POLL_S", 0.2)
    steps = []

    def deaf_step(self, timeout_sec=None):
        steps.append(timeout_sec)
        time.sleep(timeout_sec)

    monkeypatch.setattr(SingleThreadedExecutor, "spin_once", deaf_step)
    stopper = threading.Timer(0.3, lambda: rclpy.shutdown(context=node.context))
    stopper.start()
    started = time.monotonic()
    spinning.spin_until_shutdown(node)
    assert time.monotonic() - started < 0.3 + 0.2 + 0.5
    assert steps and set(steps) == {0.2}


def test_a_signal_s_usual_stop_returns(node):
    node.create_timer(0.05, lambda: None)
    threading.Timer(0.2, lambda: rclpy.shutdown(context=node.context)).start()
    spinning.spin_until_shutdown(node)
