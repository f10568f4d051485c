"""A stack of (conv block, windowed attention) layers run over a growing step series, each step
of each block computed once.

Why: the networks of this package stream in windows as wide as their whole receptive field
(``Engine``); for a stack of layers that re-reads the stack's full left reach for every new
piece, five times the new steps for the default model's high-code layers. Each block reads only
its own reach of the block below, so keeping every block's output and computing only its new
steps costs about what the new steps cost.

Every block's new steps [c, t) are computed in a window [c - left, t + right) of the block
below (its conv or attention reach), whose edges lie beyond that reach, so the numbers are those
of one pass over the whole series up to float rounding. At the end of an utterance (``total``)
the windows end where that pass ends and steps are masked as it masks them. Used by
``staged_regression`` (the refine branch) and by the engine (the code predictor's high and low
code layers).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn


class StagedBlocks:
    """The output of ``blocks`` for steps [0, count), computed as far as callers ask (``extend``)."""

    def __init__(
        self,
        blocks: Sequence[Sequence[nn.Module]],  # (ConvBlock, LocalAttention) pairs, run in order
        *,
        stride: int,  # frames per step (how a step's realness follows from the utterance's frames)
        inputs: Callable[[int, int], Tensor],  # (a, b) -> the stack's input rows for steps [a, b), (b - a, dim)
        conds: Callable[[int, int, int | None], Tensor],  # (a, b, frames or None) -> pooled conditions (b - a, c)
        window_steps: int = 450,  # most steps one block computes per call (bounds memory)
    ):
        self.blocks = [(conv, attn) for conv, attn in blocks]
        self.stride = stride
        self.inputs, self.conds = inputs, conds
        self.reach = []  # (left, right) in steps of each stage: conv, attention, per layer
        for conv, attn in self.blocks:
            self.reach += [(conv.left, conv.right), (attn.left, attn.right)]
        self.right = sum(r for _, r in self.reach)  # steps of input after the newest output step
        self.window_steps = max(1, int(window_steps))
        self.reset()

    def reset(self) -> None:
        # Without blocks the output is the input: the steps asked for so far, and the first one a
        # caller still reads.
        self._top_without_blocks = self._keep_without_blocks = 0
        n = len(self.reach)
        self._kept: list[Tensor | None] = [None] * n  # rows [starts[i], counts[i]) of stage i's output
        self._starts, self._counts = [0] * n, [0] * n
        self._cond: Tensor | None = None
        self._cond_start = 0

    @property
    def count(self) -> int:
        """Output steps computed so far (all of them when there are no blocks: the input)."""
        return self._counts[-1] if self._counts else self._top_without_blocks

    def rows(self, a: int, b: int) -> Tensor:
        """Output rows of steps [a, b) (computed, not dropped)."""
        if not self.reach:
            return self.inputs(a, b)
        return self._rows(len(self.reach) - 1, a, b)

    def buffered(self) -> int:
        """Rows kept over all blocks and conditions (for memory checks)."""
        return sum(len(k) for k in self._kept if k is not None) + (0 if self._cond is None else len(self._cond))

    def needs_input_from(self) -> int:
        """The first input step a later window reads."""
        if not self.reach:  # the output is the input: what a caller still reads
            return self._keep_without_blocks
        return max(0, self._counts[0] - self.reach[0][0])

    def needs_frames_from(self) -> int:
        """The first frame whose condition a later call computes (earlier ones are kept per step)."""
        return self.stride * (self._cond_start + (0 if self._cond is None else len(self._cond)))

    @torch.no_grad()
    def extend(self, goal: int, *, total: int | None = None, frames: int | None = None) -> None:
        """Compute output steps up to ``goal``. Inputs must exist ``right`` steps beyond it, or up to
        ``total``, the utterance's last step (then ``frames``, its length, masks the padded end)."""
        training = [m for pair in self.blocks for m in pair if m.training]
        if training:  # dropout must not act; a loaded bundle is in eval mode already
            for m in training:
                m.eval()
            try:
                return self.extend(goal, total=total, frames=frames)
            finally:
                for m in training:
                    m.train()
        if not self.reach:
            self._top_without_blocks = max(self._top_without_blocks, goal)
            return
        while self.count < goal:
            top = min(goal, self.count + self.window_steps)
            targets = [top] * len(self.reach)
            for i in range(len(self.reach) - 1, 0, -1):
                targets[i - 1] = self._cap(targets[i] + self.reach[i][1], total)
            for i, target in enumerate(targets):
                if target > self._counts[i]:
                    self._extend_stage(i, target, total, frames)

    def drop_before(self, step: int) -> None:
        """Forget output rows before ``step`` and whatever no later window reads."""
        if not self.reach:
            self._keep_without_blocks = max(self._keep_without_blocks, step)
            return
        needs = [max(0, self._counts[i + 1] - self.reach[i + 1][0]) for i in range(len(self.reach) - 1)] + [step]
        for i, keep_from in enumerate(needs):
            drop = keep_from - self._starts[i]
            if drop > 0 and self._kept[i] is not None:
                self._kept[i] = self._kept[i][drop:]
                self._starts[i] += drop
        cond_from = min(max(0, c - left) for c, (left, _) in zip(self._counts, self.reach))
        drop = cond_from - self._cond_start
        if drop > 0 and self._cond is not None:
            self._cond = self._cond[drop:]
            self._cond_start += drop

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _cap(step: int, total: int | None) -> int:
        return step if total is None else min(step, total)

    def _extend_stage(self, i: int, target: int, total: int | None, frames: int | None) -> None:
        left, right = self.reach[i]
        c = self._counts[i]
        a, b = max(0, c - left), self._cap(target + right, total)
        x = self.inputs(a, b) if i == 0 else self._rows(i - 1, a, b)
        cond = self._cond_rows(a, b, frames)[None]
        mask = torch.ones((1, b - a), dtype=torch.bool, device=x.device)
        if frames is not None:  # steps without a real frame are masked, as one pass masks them
            mask[:, max(0, -(-frames // self.stride) - a):] = False
        conv, attn = self.blocks[i // 2]
        if i % 2 == 0:
            new = conv(x[None], mask, cond)[0, c - a:target - a]
        else:
            new = attn.forward_from(x[None], mask, cond, c - a)[0, :target - c]
        kept = self._kept[i]
        self._kept[i] = new if kept is None or len(kept) == 0 else torch.cat([kept, new])
        self._counts[i] = target

    def _rows(self, i: int, a: int, b: int) -> Tensor:
        first = a - self._starts[i]
        assert first >= 0 and b <= self._counts[i], f"stage {i}: rows [{a}, {b}) not kept"  # see drop_before
        return self._kept[i][first:b - self._starts[i]]

    def _cond_rows(self, a: int, b: int, frames: int | None) -> Tensor:
        have = self._cond_start + (0 if self._cond is None else len(self._cond))
        if b > have:
            new = self.conds(have, b, frames)
            self._cond = new if self._cond is None or len(self._cond) == 0 else torch.cat([self._cond, new])
        first = a - self._cond_start
        assert first >= 0, "a step condition this window reads was dropped"  # see drop_before
        return self._cond[first:b - self._cond_start]


def step_conditions(conditioner: nn.Module, inputs: Callable, a: int, b: int, *, stride: int,
                    frames: int | None) -> tuple[Tensor, Tensor]:
    """(frame mask (1, L), per-frame condition (1, L, c)) of steps [a, b): frames [stride*a,
    stride*b), L their count, as one pass conditions and masks them. ``frames``: the utterance's
    frames so far (None: all of these are real); frames beyond it are padding, zero and masked.
    ``inputs(fa, fb, speech=False)`` gives ``(_, text, identity)``, as ``Engine._window_inputs``.
    ``pool_time(cond, mask, stride)`` makes the per-step conditions of ``StagedBlocks``."""
    fa, fb = stride * a, stride * b
    real = fb if frames is None else max(fa, min(fb, frames))
    mask = torch.zeros((1, fb - fa), dtype=torch.bool, device=conditioner.null_text.device)
    mask[:, :real - fa] = True
    if real == fa:  # only padding (an utterance's end rounded up to the model's alignment)
        return mask, conditioner.null_text.new_zeros((1, fb - fa, conditioner.null_text.shape[0]))
    _, text, identity = inputs(fa, real, speech=False)
    cond = conditioner(identity, text, batch=1, frames=real - fa, drop=False)
    cond = torch.cat([cond, cond.new_zeros((1, fb - real, cond.shape[2]))], dim=1)
    return mask, cond * mask[..., None]
