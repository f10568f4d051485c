"""A regression network run over a growing utterance, each inner step computed once.

Why: the streaming engine used to run the code predictor's speech branch (a
``RegressionBaseline``) over its whole receptive field for every new piece of speech: 139
frames of left reach re-read for each 29 new frames of a 0.96 s chunk, 15 % of the default
model's streaming time (bench/peers.py profile). Its blocks reach only a few inner steps each;
computed block by block, every block's new steps need only their own reach of the block below,
which is kept.

Stages and where each reads (``s`` = stride, ``r`` = conv reach, ``R`` = r x frame blocks):

* front: frames -> inner step j, from frames [s*j - R, s*j + s - 1 + R];
* per layer, its conv block (steps [j - r, j + r] below) and its windowed attention (steps
  [j - attn_left, j + attn_right] below; only the new steps are queried, ``forward_from``);
* back: frame t from inner steps [(t - R) // s, (t + R) // s].

The condition of each inner step (text and identity pooled over its frames) is computed once
and kept too. A step is computed once all it reads exists, in a window whose edges lie beyond
that reach (what the zero padding at a window's edge changes is never kept), so the numbers are
those of ``RegressionBaseline.run`` over the whole utterance up to float rounding; ``final``
computes the rest with the utterance's end masked as that pass masks it. Kept rows are dropped
once no later window reads them, so memory does not grow with the stream.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .baselines import RegressionBaseline
from .layers import pool_time

# inputs(a, b, speech=...) -> (speech (1, b - a, speech_dim) or None, text (1, b - a, text_dim), identity (1,))
Inputs = Callable[..., tuple]


class StagedRegression:
    """Motion rows of a ``RegressionBaseline`` for frames as they become final; one utterance at a time."""

    def __init__(self, model: RegressionBaseline, *, window_steps: int = 450):
        c = model.config
        self.model = model
        self.s = c.stride
        r = (c.kernel - 1) // 2
        self.R = r * c.frame_blocks  # frames each side that the frame-rate conv blocks read
        # (left, right) reach in inner steps of each stage after the front: conv, attention, per layer
        self.reach = [(r, r), (c.attn_left, c.attn_right)] * c.layers
        self.window_steps = max(1, int(window_steps))  # most inner steps one call computes (bounds memory)
        self.reset()

    def reset(self) -> None:
        """Forget the utterance; the next frame is 0."""
        n = len(self.reach) + 1  # the front, then the blocks
        self._kept: list[Tensor | None] = [None] * n  # rows [starts[i], counts[i]) of stage i's output
        self._starts, self._counts = [0] * n, [0] * n
        self._cond, self._cond_start = None, 0  # each inner step's pooled condition, kept likewise
        self._next_frame = 0  # first frame of motion not yet returned

    @property
    def next_frame(self) -> int:
        return self._next_frame

    def ready(self, frames: int) -> int:
        """Frames of motion that can be final with ``frames`` of speech (utterance not ended)."""
        steps = max(0, (frames - self.R) // self.s)
        for _, right in self.reach:
            steps = max(0, steps - right)
        return max(0, min(frames, self.s * steps - self.R))

    def frames_needed_from(self) -> int:
        """The first frame (speech or text) that a later call can read; earlier ones may be dropped."""
        front = self.s * max(0, self._counts[0] - -(-self.R // self.s))
        back = self.s * max(0, (self._next_frame - self.R) // self.s)
        return min(front, back, self.s * self._cond_count())

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
        out = []
        while True:  # rounds in which every stage moves on by at most window_steps: bounded memory
            moved = False
            for i in range(len(self._counts)):
                goal = min(self._goal(i, frames, total), self._counts[i] + self.window_steps)
                if goal > self._counts[i]:
                    self._extend(i, goal, inputs, frames, total)
                    moved = True
            stop = frames if self._complete(-1, total) else max(0, min(frames, self.s * self._counts[-1] - self.R))
            if stop > self._next_frame:
                out.append(self._back(self._next_frame, stop, inputs, frames, total))
                self._next_frame = stop
                self._drop()
                moved = True
            if not moved:
                break
        if not out:
            weight = self.model.out.weight
            return torch.zeros((0, self.model.config.motion_dim), device=weight.device, dtype=weight.dtype)
        return torch.cat(out) if len(out) > 1 else out[0]

    # ------------------------------------------------------------------ stages

    def _complete(self, i: int, total: int | None) -> bool:
        """Whether stage ``i`` holds every step of the ended utterance (then windows may end there)."""
        return total is not None and self._counts[i] == total

    def _goal(self, i: int, frames: int, total: int | None) -> int:
        """Steps of stage ``i`` whose whole reach exists now."""
        if i == 0:
            return total if total is not None else max(0, (frames - self.R) // self.s)
        if self._complete(i - 1, total):
            return total
        return max(0, self._counts[i - 1] - self.reach[i - 1][1])

    def _extend(self, i: int, goal: int, inputs: Inputs, frames: int, total: int | None) -> None:
        j0 = self._counts[i]
        if i == 0:
            a = max(0, j0 - -(-self.R // self.s))  # first inner step of the window
            b_frame = frames if total is not None and goal == total else min(frames, self.s * goal + self.R)
            speech, _, _ = inputs(self.s * a, b_frame, speech=True)
            fine = self._fine_mask(self.s * a, b_frame, frames)
            x = speech.to(self.model.speech_in.weight)
            x = torch.cat([x, x.new_zeros((1, fine.shape[1] - x.shape[1], x.shape[2]))], dim=1)
            new = self.model.front(x, fine)[0, j0 - a:goal - a]
        else:
            left, right = self.reach[i - 1]
            below = self._counts[i - 1]
            a = max(0, j0 - left)
            b = below if self._complete(i - 1, total) else min(below, goal + right)
            h = self._rows(i - 1, a, b)[None]
            cond = self._cond_rows(a, b, inputs, frames, total)[None]
            coarse = torch.ones((1, b - a), dtype=torch.bool, device=h.device)  # every inner step is real
            conv, attn = self.model.layers[(i - 1) // 2]
            if i % 2:
                new = conv(h, coarse, cond)[0, j0 - a:goal - a]
            else:
                new = attn.forward_from(h, coarse, cond, j0 - a)[0, :goal - j0]
        kept = self._kept[i]
        self._kept[i] = new if kept is None or len(kept) == 0 else torch.cat([kept, new])
        self._counts[i] = goal

    def _back(self, t0: int, t1: int, inputs: Inputs, frames: int, total: int | None) -> Tensor:
        a = max(0, (t0 - self.R) // self.s)
        last = self._counts[-1]
        b = last if self._complete(-1, total) else min(last, (t1 - 1 + self.R) // self.s + 1)
        fine, cond = self._frame_cond(a, b, inputs, frames)
        motion = self.model.back(self._rows(-1, a, b)[None], fine, cond)
        return motion[0, t0 - self.s * a:t1 - self.s * a]

    # ------------------------------------------------------------------ helpers

    def _rows(self, i: int, a: int, b: int) -> Tensor:
        i = i % len(self._kept)
        first = a - self._starts[i]
        assert first >= 0, "a step this window reads was dropped"  # the keep rule of _drop
        return self._kept[i][first:b - self._starts[i]]

    def _fine_mask(self, a: int, b: int, frames: int) -> Tensor:
        """(1, frames rounded up to the stride) real-frame mask of the window [a, b), as ``run`` masks it."""
        length = -(-(b - a) // self.s) * self.s
        mask = torch.zeros((1, length), dtype=torch.bool, device=self.model.out.weight.device)
        mask[:, :min(b, frames) - a] = True
        return mask

    def _frame_cond(self, a: int, b: int, inputs: Inputs, frames: int) -> tuple[Tensor, Tensor]:
        """(fine mask, per-frame condition) of the inner steps [a, b): frames [s*a, s*b)."""
        fa, fb = self.s * a, min(self.s * b, frames)
        _, text, identity = inputs(fa, fb, speech=False)
        cond = self.model.conditioner(identity, text, batch=1, frames=fb - fa, drop=False)
        fine = self._fine_mask(fa, self.s * b, frames)
        cond = torch.cat([cond, cond.new_zeros((1, fine.shape[1] - cond.shape[1], cond.shape[2]))], dim=1)
        return fine, cond * fine[..., None]

    def _cond_count(self) -> int:
        return self._cond_start + (0 if self._cond is None else len(self._cond))

    def _cond_rows(self, a: int, b: int, inputs: Inputs, frames: int, total: int | None) -> Tensor:
        """The pooled condition of inner steps [a, b), computed once per step."""
        have = self._cond_count()
        if b > have:
            fine, cond = self._frame_cond(have, b, inputs, frames)
            new = pool_time(cond, fine, self.s)[0]
            self._cond = new if self._cond is None or len(self._cond) == 0 else torch.cat([self._cond, new])
        first = a - self._cond_start
        assert first >= 0, "a step condition this window reads was dropped"  # the keep rule of _drop
        return self._cond[first:b - self._cond_start]

    def _drop(self) -> None:
        """Drop kept rows that no later window reads."""
        last = len(self._kept) - 1
        needs = []  # per stage, the first row its next window reads
        for i in range(last + 1):
            if i < last:
                needs.append(max(0, self._counts[i + 1] - self.reach[i][0]))
            else:
                needs.append(max(0, (self._next_frame - self.R) // self.s))
            drop = needs[-1] - self._starts[i]
            if drop > 0 and self._kept[i] is not None:
                self._kept[i] = self._kept[i][drop:]
                self._starts[i] += drop
        drop = min(needs[:-1]) - self._cond_start if len(needs) > 1 else 0
        if drop > 0 and self._cond is not None:
            self._cond = self._cond[drop:]
            self._cond_start += drop
