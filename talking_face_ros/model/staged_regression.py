"""A regression network run over a growing utterance, each inner step computed once.

Why: the streaming engine used to run the code predictor's speech branch (a
``RegressionBaseline``) over its whole receptive field for every new piece of speech: 139
frames of left reach re-read for each 29 new frames of a 0.96 s chunk, 15 % of the default
model's streaming time (bench/peers.py profile). Its blocks reach only a few inner steps each;
computed block by block, every block's new steps need only their own reach of the block below,
which is kept.

Stages and where each reads (``s`` = stride, ``r`` = conv reach, ``R`` = r x frame blocks):

* front: frames -> inner step j, from frames [s*j - R, s*j + s - 1 + R];
* the inner layers, block by block (``staged_blocks.StagedBlocks``);
* back: frame t from inner steps [(t - R) // s, (t + R) // s].

A step is computed once all it reads exists, in a window whose edges lie beyond that reach
(what the zero padding at a window's edge changes is never kept), so the numbers are those of
``RegressionBaseline.run`` over the whole utterance up to float rounding; ``final`` computes the
rest with the utterance's end masked as that pass masks it. Kept rows are dropped once no later
window reads them, so memory does not grow with the stream.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .baselines import RegressionBaseline
from .layers import pool_time
from .staged_blocks import StagedBlocks, step_conditions

# inputs(a, b, speech=...) -> (speech (1, b - a, speech_dim) or None, text (1, b - a, text_dim), identity (1,))
Inputs = Callable[..., tuple]


class StagedRegression:
    """Motion rows of a ``RegressionBaseline`` for frames as they become final; one utterance at a time."""

    def __init__(self, model: RegressionBaseline, *, window_steps: int = 450):
        c = model.config
        self.model = model
        self.s = c.stride
        self.R = (c.kernel - 1) // 2 * c.frame_blocks  # frames each side that the frame-rate conv blocks read
        self.window_steps = max(1, int(window_steps))  # most inner steps one call computes (bounds memory)
        self._blocks = StagedBlocks(model.layers, stride=self.s, inputs=self._front_rows, conds=self._step_conds,
                                    window_steps=self.window_steps)
        self._call: tuple | None = None  # (inputs, frames, total) of the advance in progress
        self.reset()

    def reset(self) -> None:
        """Forget the utterance; the next frame is 0."""
        self._blocks.reset()
        self._front, self._front_start, self._front_count = None, 0, 0  # inner steps from the front
        self._next_frame = 0  # first frame of motion not yet returned

    @property
    def next_frame(self) -> int:
        return self._next_frame

    def buffered(self) -> int:
        """Rows kept over all stages (for memory checks)."""
        return self._blocks.buffered() + (0 if self._front is None else len(self._front))

    def ready(self, frames: int) -> int:
        """Frames of motion that can be final with ``frames`` of speech (utterance not ended)."""
        return max(0, min(frames, self.s * self._ready_steps(frames) - self.R))

    def _ready_steps(self, frames: int) -> int:
        """Inner steps of the last layer that can be final with ``frames`` of speech."""
        return max(0, max(0, (frames - self.R) // self.s) - self._blocks.right)

    def frames_needed_from(self) -> int:
        """The first frame (speech or text) that a later call can read; earlier ones may be dropped."""
        front = self.s * max(0, min(self._front_count, self._blocks.needs_input_from()) - -(-self.R // self.s))
        back = self.s * max(0, (self._next_frame - self.R) // self.s)
        return min(front, back, self._blocks.needs_frames_from())

    @torch.no_grad()
    def advance(self, inputs: Inputs, frames: int, *, final: bool) -> Tensor:
        """Unactivated motion (n, motion_dim) of the frames made final since the last call.

        ``frames``: speech frames of the utterance so far; ``final``: the utterance ends there.
        ``inputs`` gives a window's model inputs, as ``Engine._window_inputs`` does.
        """
        if self.model.training:  # dropout must not act; a loaded bundle is in eval mode already
            self.model.eval()
            try:
                return self.advance(inputs, frames, final=final)
            finally:
                self.model.train()
        total = -(-frames // self.s) if final else None  # inner steps of the ended utterance
        goal = total if final else self._ready_steps(frames)
        self._call = (inputs, frames, total)
        out = []
        try:
            while True:  # in rounds of window_steps: bounded memory however long the utterance
                self._blocks.extend(min(goal, self._blocks.count + self.window_steps), total=total,
                                    frames=frames if final else None)
                done = self._blocks.count
                stop = frames if final and done == total else max(0, min(frames, self.s * done - self.R))
                if stop <= self._next_frame:
                    break
                out.append(self._back(self._next_frame, stop, inputs, frames, total))
                self._next_frame = stop
                self._drop()
        finally:
            self._call = None
        if not out:
            weight = self.model.out.weight
            return torch.zeros((0, self.model.config.motion_dim), device=weight.device, dtype=weight.dtype)
        return torch.cat(out) if len(out) > 1 else out[0]

    # ------------------------------------------------------------------ stages

    def _front_rows(self, a: int, b: int) -> Tensor:
        """Front output of inner steps [a, b), computed as far as needed (the blocks' input)."""
        inputs, frames, total = self._call
        if b > self._front_count:
            j0 = self._front_count
            wa = max(0, j0 - -(-self.R // self.s))  # first inner step of the window
            b_frame = frames if total is not None and b == total else self.s * b + self.R
            assert b_frame <= frames, "front: speech beyond the newest frame asked for"
            speech, _, _ = inputs(self.s * wa, b_frame, speech=True)
            fine = self._fine_mask(self.s * wa, b_frame, frames)
            x = speech.to(self.model.speech_in.weight)
            x = torch.cat([x, x.new_zeros((1, fine.shape[1] - x.shape[1], x.shape[2]))], dim=1)
            new = self.model.front(x, fine)[0, j0 - wa:b - wa]
            self._front = new if self._front is None or len(self._front) == 0 else torch.cat([self._front, new])
            self._front_count = b
        first = a - self._front_start
        assert first >= 0, "front: a step this window reads was dropped"
        return self._front[first:b - self._front_start]

    def _step_conds(self, a: int, b: int, frames: int | None) -> Tensor:
        """Pooled conditions of inner steps [a, b) (``frames``: the ended utterance's length)."""
        inputs, n, _ = self._call
        fine, cond = step_conditions(self.model.conditioner, inputs, a, b, stride=self.s, frames=n)
        return pool_time(cond, fine, self.s)[0]

    def _back(self, t0: int, t1: int, inputs: Inputs, frames: int, total: int | None) -> Tensor:
        a = max(0, (t0 - self.R) // self.s)
        last = self._blocks.count
        b = last if total is not None and last == total else min(last, (t1 - 1 + self.R) // self.s + 1)
        fine, cond = step_conditions(self.model.conditioner, inputs, a, b, stride=self.s, frames=frames)
        motion = self.model.back(self._blocks.rows(a, b)[None], fine, cond)
        return motion[0, t0 - self.s * a:t1 - self.s * a]

    # ------------------------------------------------------------------ helpers

    def _fine_mask(self, a: int, b: int, frames: int) -> Tensor:
        """(1, frames rounded up to the stride) real-frame mask of the window [a, b), as ``run`` masks it."""
        length = -(-(b - a) // self.s) * self.s
        mask = torch.zeros((1, length), dtype=torch.bool, device=self.model.out.weight.device)
        mask[:, :min(b, frames) - a] = True
        return mask

    def _drop(self) -> None:
        """Drop kept rows that no later window reads."""
        self._blocks.drop_before(max(0, (self._next_frame - self.R) // self.s))
        drop = self._blocks.needs_input_from() - self._front_start
        if drop > 0 and self._front is not None:
            self._front = self._front[drop:]
            self._front_start += drop
