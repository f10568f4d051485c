"""Node processes started and watched from Python: the demo, the reliability report, benches and tests.

Why one class: each of them starts an installed executable, must read its merged output while it
runs (a pipe nobody drains stalls the child), wait for a line such as "ready in", and stop it with
a signal, killing it when it will not end.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path


class Child:
    """A process whose merged stdout + stderr is kept line by line (the newest ``keep_lines``), each with its arrival time."""

    def __init__(self, args, *, env: dict[str, str] | None = None,  # env: the whole environment (None: this one's)
                 name: str | None = None,  # for messages; default: the executable's file name
                 keep_lines: int = 5000):  # bounded: a report may watch a node for hours
        self.args = [str(a) for a in args]
        self.name = name or Path(self.args[0]).name
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"})
        self.lines: deque[tuple[float, str]] = deque(maxlen=keep_lines)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.append((time.monotonic(), line.rstrip()))

    def text_lines(self) -> list[str]:
        """The lines so far; all of them once the process has ended (waits briefly for the reader)."""
        if self.proc.poll() is not None:
            self._reader.join(timeout=1.0)
        return [line for _, line in list(self.lines)]

    def output(self, last: int | None = None) -> str:
        """The output so far, the ``last`` lines only when given."""
        lines = self.text_lines()
        return "\n".join(lines[-last:] if last else lines) or "(no output)"

    def find_line(self, text: str) -> tuple[float, str] | None:
        """(arrival time, line) of the first line containing ``text``, or None."""
        return next(((t, line) for t, line in list(self.lines) if text in line), None)

    def wait_line(self, text: str, timeout_s: float) -> tuple[float, str]:
        """(arrival time, line) of the first line containing ``text``; RuntimeError on timeout or exit."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.find_line(text)
            if found is not None:
                return found
            if self.proc.poll() is not None:
                self._reader.join(timeout=1.0)  # the last lines of an ended process
                found = self.find_line(text)
                if found is not None:
                    return found
                raise RuntimeError(f"{self.name} exited with status {self.proc.returncode} before "
                                   f"{text!r}:\n{self.output(last=30)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no {text!r} within {timeout_s:g} s:\n{self.output(last=30)}")
            time.sleep(0.02)

    def signal_and_wait(self, sig=signal.SIGINT, timeout_s: float = 30.0) -> tuple[int | None, float]:
        """Send ``sig``; (exit status, or None when it did not end and was killed; seconds from the signal to the end)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None, time.monotonic() - t0
        return status, time.monotonic() - t0

    def stop(self, sig=signal.SIGINT, timeout_s: float = 30.0) -> int | None:
        """Signal and wait: the exit status, or None after killing a process that would not stop."""
        return self.signal_and_wait(sig, timeout_s)[0]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its living descendants (the talking face node and its engine process), from /proc."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:  # the task ended meanwhile
                pass
    return found


def proc_memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB of a process with its descendants' added, from /proc.

    The sum of the peaks (VmHWM) bounds the peak of the sum from above.
    """
    rss = hwm = 0.0
    for p in process_tree(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:  # a descendant that ended meanwhile
            continue
        for line in lines:
            key, _, value = line.partition(":")
            if key == "VmRSS":
                rss += int(value.split()[0]) / 1024
            elif key == "VmHWM":
                hwm += int(value.split()[0]) / 1024
    return rss, hwm


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process and its living descendants have used, from /proc."""
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
