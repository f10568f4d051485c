"""StagedRegression: a regression network streamed block by block gives one pass's numbers,
keeps bounded state, and is never later than the network's own reach says it can be."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from talking_face_ros.model import RegressionBaseline, RegressionConfig
from talking_face_ros.model.layers import LocalAttention
from talking_face_ros.model.staged_regression import StagedRegression

SPEECH_DIM, TEXT_DIM = 8, 6

CONFIGS = {  # the default model's branch (stride 2, kernel 3, causal attention) and two others
    "branch": dict(stride=2, kernel=3, attn_left=16, attn_right=0, layers=4, frame_blocks=1),
    "stride4": dict(stride=4, kernel=5, attn_left=5, attn_right=2, layers=2, frame_blocks=2),
    "stride1": dict(stride=1, kernel=3, attn_left=3, attn_right=1, layers=3, frame_blocks=0),
    "no-layers": dict(stride=2, kernel=3, attn_left=4, attn_right=0, layers=0, frame_blocks=1),
}


def network(name: str, seed: int = 0) -> RegressionBaseline:
    torch.manual_seed(seed)
    config = RegressionConfig(speech_dim=SPEECH_DIM, text_dim=TEXT_DIM, frame_dim=16, dim=32, heads=4, cond_dim=8,
                              identity_dim=4, num_speakers=3, dropout=0.0, **CONFIGS[name])
    model = RegressionBaseline(config).eval()
    with torch.no_grad():  # every parameter matters, FiLM and attention biases included
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


class Stream:
    """An utterance's inputs, read window by window as the engine serves them (counting reads)."""

    def __init__(self, frames: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.speech = torch.randn(1, frames, SPEECH_DIM, generator=g)
        self.text = torch.randn(1, frames, TEXT_DIM, generator=g)
        self.identity = torch.tensor([2])
        self.dropped = 0  # frames before this one must not be read

    def __call__(self, a: int, b: int, *, speech: bool = False):
        assert a >= self.dropped, f"read frame {a} after frames before {self.dropped} were dropped"
        assert b <= self.speech.shape[1]
        return (self.speech[:, a:b] if speech else None), self.text[:, a:b], self.identity


def streamed(model, stream: Stream, pieces, *, window_steps: int = 450) -> torch.Tensor:
    staged = StagedRegression(model, window_steps=window_steps)
    n, out = 0, []
    for piece in pieces:
        n += piece
        out.append(staged.advance(stream, n, final=False))
        assert staged.next_frame == staged.ready(n)
        stream.dropped = max(stream.dropped, staged.frames_needed_from())
    out.append(staged.advance(stream, n, final=True))
    assert staged.next_frame == n
    return torch.cat(out)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("frames", [1, 6, 37, 251])
def test_streaming_block_by_block_equals_one_pass(name, frames):
    model = network(name)
    stream = Stream(frames)
    whole = model.run(stream.speech, identity=stream.identity, text=stream.text)[0].detach()
    rng = np.random.default_rng(frames)
    pieces = []
    while sum(pieces) < frames:
        pieces.append(int(min(frames - sum(pieces), rng.integers(1, 40))))
    got = streamed(model, stream, pieces, window_steps=7)  # small windows: many rounds per call
    assert got.shape == whole.shape
    torch.testing.assert_close(got, whole, atol=1e-4, rtol=0)


def test_one_final_call_equals_one_pass_and_pieces_of_one_frame_too():
    model = network("branch", seed=3)
    stream = Stream(90, seed=3)
    whole = model.run(stream.speech, identity=stream.identity, text=stream.text)[0].detach()
    torch.testing.assert_close(StagedRegression(model).advance(stream, 90, final=True), whole, atol=1e-4, rtol=0)
    torch.testing.assert_close(streamed(model, Stream(90, seed=3), [1] * 90), whole, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_ready_is_never_later_than_the_networks_reach(name):
    model = network(name)
    staged = StagedRegression(model)
    right = model.receptive_field.right
    for n in range(0, 400):
        assert n - right <= staged.ready(n) <= n


def test_state_stays_bounded_on_a_long_stream():
    model = network("branch")
    stream = Stream(3000)
    staged = StagedRegression(model)
    sizes = []
    for n in range(29, 3000, 29):  # 0.96 s chunks at 30 fps
        staged.advance(stream, n, final=False)
        stream.dropped = staged.frames_needed_from()
        sizes.append(staged.buffered())
        assert n - stream.dropped <= 29 + 139 + 2  # frames kept: about one piece plus the left reach
    assert max(sizes[20:]) == max(sizes[-20:]) and max(sizes) < 400  # no growth with the stream's length


def test_a_model_in_training_mode_streams_without_dropout_and_stays_in_training_mode():
    model = network("branch")
    model.frame_in[0].mlp[2].p = 0.5  # a dropout that would change the numbers in training mode
    stream = Stream(60)
    whole = model.run(stream.speech, identity=stream.identity, text=stream.text)[0].detach()
    model.train()
    got = StagedRegression(model).advance(stream, 60, final=True)
    assert model.training
    torch.testing.assert_close(got, whole, atol=1e-4, rtol=0)


@pytest.mark.parametrize("left, right, first", [(3, 1, 0), (3, 1, 7), (16, 0, 20), (2, 2, 10)])
def test_attention_forward_from_equals_forward_on_the_queried_steps(left, right, first):
    torch.manual_seed(left + right + first)
    attn = LocalAttention(8, heads=2, left=left, right=right, cond_dim=4).eval()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0.0, 0.3)
        x, cond = torch.randn(1, 31, 8), torch.randn(1, 31, 4)
        mask = torch.ones(1, 31, dtype=torch.bool)
        mask[0, 28:] = False  # a padded end
        torch.testing.assert_close(attn.forward_from(x, mask, cond, first), attn(x, mask, cond)[:, first:],
                                   atol=1e-5, rtol=0)
