"""One fixed-rate frame timeline for the talking face node, idle and speech alike; no ROS here.

The node publishes frame k of a grid fixed at start-up: its stamp is ``t0 + k * period`` on
the audio clock (the clock of AudioChunk stamps), and it is published when the node's clock
reaches ``stamp + delay``. Stamps therefore rise by exactly one period from frame to frame,
whether the face idles or speaks, and every frame leaves the node the same ``delay`` after
the audio it depicts: a player that delays its audio by ``delay`` is in sync.

Three pieces, each testable on its own:

``AudioIntake`` turns AudioChunks into engine work: utterance begin / audio / end. It puts an
utterance on the grid by padding it with less than one frame of silence in front, so the
engine's frame 0 falls exactly on a grid frame and frame i of the utterance is grid frame
``first_frame + i``: its stamp is the utterance's first-sample stamp minus the pad plus
``i / fps``. It also fills gaps in the audio with silence, drops chunks whose stamps go
backwards and chunks delivered twice (same stream, sequence, stamp and samples), re-stamps
utterances with absurd stamps, rejects malformed chunks, and notes audio that reaches full
scale (clipping: animated as it is), counting each case.

``GridFrames`` maps the engine's frames (the model's rate) onto the grid (the node's fps):
identity when the rates agree, linear interpolation when not.

``FaceTimeline`` merges speech frames into the idle face: frames are kept by grid index until
due; a due slot with a speech frame shows it, an empty one shows the face at rest
(``idle_face.IdleFace``), and a short crossfade joins the two, so no switch is a jump. A speech
frame that arrives after its slot was published is late: dropped and counted, never shown
out of order.
"""
from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from .engine import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

NS = 1_000_000_000
ENGINE_RATE = 16_000  # the rate the engine's encoders run at; pads are counted in its samples
STAMP_TOLERANCE_NS = 5_000_000  # chunk stamps within 5 ms of the sample clock count as continuous
# Share of a small deviation (within the tolerance) the expected stamp moves toward: slow drift
# of a source's clock against its sample count is followed, jitter averages out.
DRIFT_FOLLOW = 0.1
MIN_RATE, MAX_RATE = MIN_SAMPLE_RATE, MAX_SAMPLE_RATE  # accepted AudioChunk sample rates (Hz): the engine's
MAX_CHUNK_S = 120.0  # a longer single chunk is refused as bad input
MAX_BURST_S = 2.0  # a publisher more than this far behind skips frames instead of bursting them
RECENT_CHUNKS = 64  # chunks remembered to recognise duplicates (the audio QoS keeps 50)


# ---------------------------------------------------------------------------------------------
# The grid


class Grid:
    """Frame k at ``t0_ns + k * period_ns`` (integer nanoseconds: no drift in hours)."""

    def __init__(self, *, fps: float, t0_ns: int):
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        self.fps = float(fps)
        self.period_ns = int(round(NS / fps))
        self.t0_ns = int(t0_ns)

    def stamp(self, k: int) -> int:
        return self.t0_ns + k * self.period_ns

    def index_at_or_before(self, t_ns: int) -> int:
        return (int(t_ns) - self.t0_ns) // self.period_ns

    def seconds(self, k: int) -> float:
        """Grid time of frame k from t0, in seconds (small numbers: the idle face's clock)."""
        return k * self.period_ns / NS


# ---------------------------------------------------------------------------------------------
# Audio in


@dataclass(frozen=True)
class Chunk:
    """The fields of an AudioChunk message, as plain Python."""

    stream_id: str
    sequence: int
    utterance_id: int
    utterance_start: bool
    utterance_end: bool
    stamp_ns: int  # capture time of the first sample
    sample_rate: int
    channels: int
    samples: np.ndarray  # int16, interleaved by channel

    @property
    def frames(self) -> int:
        """Sample frames (samples per channel)."""
        return len(self.samples) // max(self.channels, 1)

    @property
    def duration_ns(self) -> int:
        return self.frames * NS // self.sample_rate if self.sample_rate else 0


@dataclass(frozen=True)
class Begin:
    """A new utterance: reset the engine and feed ``pad_samples`` zeros at ENGINE_RATE first."""

    utterance_id: int
    first_frame: int  # grid index of the engine's frame 0
    pad_samples: int


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int


@dataclass(frozen=True)
class End:
    reason: str  # "flag", "timeout", "gap", "backwards", "restart"


@dataclass
class _Utterance:
    stream_id: str
    utterance_id: int
    expected_ns: float  # where the next chunk should start on the (re-stamped) clock
    offset_ns: int  # added to this utterance's stamps (non-zero when re-stamped)
    last_sequence: int
    last_arrival_ns: int


class AudioIntake:
    """AudioChunks -> ``Begin`` / ``Audio`` / ``End`` actions on the grid, robust to bad streams.

    One voice at a time: while an utterance of one stream is open, chunks of other streams are
    dropped (counted). A stream that has ever marked utterances (start/end flags) is taken at
    its word: its chunks between utterances are silence and ignored. A stream that never marks
    them is speech whenever it sends audio, and its utterances end after ``utterance_timeout``
    without audio.
    """

    def __init__(self, grid: Grid, *, max_gap_s: float, utterance_timeout_s: float, max_clock_offset_s: float):
        self.grid = grid
        self.max_gap_ns = int(max_gap_s * NS)
        self.timeout_ns = int(utterance_timeout_s * NS)
        self.max_offset_ns = int(max_clock_offset_s * NS)
        self.active: _Utterance | None = None
        self.marked: set[str] = set()  # streams that use utterance flags
        self._recent: deque = deque(maxlen=RECENT_CHUNKS)  # keys of the last chunks accepted
        self.counts: Counter = Counter()
        self.warnings: list[tuple[str, str]] = []  # (key, message) for the node to log, throttled by key

    def accept(self, chunk: Chunk, *, now_ns: int) -> list:
        """The actions for one chunk that arrived at ``now_ns`` (none when it is dropped)."""
        problem = self._problem(chunk)
        if problem:
            self.counts["bad_inputs"] += 1
            self._warn("bad", f"dropped a bad AudioChunk from stream {chunk.stream_id!r} "
                              f"(sequence {chunk.sequence}): {problem}")
            return []
        key = _key(chunk)
        if key in self._recent:  # checked first: a repeated start chunk must not restart
            self.counts["duplicates"] += 1
            self._warn("duplicate", f"stream {chunk.stream_id!r}: dropped chunk {chunk.sequence}, a "
                                    f"duplicate (same sequence, stamp and samples as one already received)")
            return []
        self._recent.append(key)
        if chunk.frames and (chunk.samples.max() >= 32767 or chunk.samples.min() <= -32768):
            self.counts["clipped_chunks"] += 1
            self._warn("clipping", f"stream {chunk.stream_id!r}: the audio reaches full scale (clipping; "
                                   f"lower the input gain); it is animated as it is")
        if chunk.utterance_start or chunk.utterance_end:
            if len(self.marked) > 1000:  # bound memory against streams with random ids
                self.marked.clear()
            self.marked.add(chunk.stream_id)
        u = self.active
        if u is not None and chunk.stream_id != u.stream_id:
            self.counts["chunks_dropped"] += 1
            self._warn("stream", f"dropped audio of stream {chunk.stream_id!r} while an utterance of "
                                 f"{u.stream_id!r} is open (one voice at a time)")
            return []
        actions: list = []
        if chunk.utterance_start or u is None:
            if u is not None:
                actions.append(self._end("restart"))
            elif chunk.stream_id in self.marked and not chunk.utterance_start:
                return actions  # silence between the utterances of a marking stream
            actions += self._begin(chunk, now_ns)
        else:
            missing = (chunk.sequence - u.last_sequence - 1) % 2**32
            if 0 < missing < 2**31:
                self.counts["chunks_lost"] += missing
            placed, keep = self._place(chunk, u, now_ns)
            actions += placed
            if not keep:
                return actions
        u = self.active
        if chunk.frames:
            actions.append(Audio(_mono(chunk), chunk.sample_rate))
            u.expected_ns += chunk.frames * NS / chunk.sample_rate
        u.last_sequence = chunk.sequence
        u.last_arrival_ns = now_ns
        if chunk.utterance_end:
            actions.append(self._end("flag"))
        return actions

    def _place(self, chunk: Chunk, u: _Utterance, now_ns: int) -> tuple[list, bool]:
        """Where a chunk of the open utterance goes: (actions before its audio, keep its audio)."""
        gap = chunk.stamp_ns + u.offset_ns - u.expected_ns
        if abs(gap) <= STAMP_TOLERANCE_NS:  # continuous: follow slow drift, ignore jitter
            u.expected_ns += DRIFT_FOLLOW * gap
            return [], True
        if 0 < gap <= self.max_gap_ns:  # a gap: silence in between
            n = int(round(gap * chunk.sample_rate / NS))
            u.expected_ns += n * NS / chunk.sample_rate
            self.counts["gaps_filled"] += 1
            return [Audio(np.zeros(n, np.float32), chunk.sample_rate)], True
        if gap < 0:
            self.counts["stamps_backwards"] += 1
        if abs(gap) > self.max_gap_ns:  # far off either way: a new utterance from here
            self.counts["resyncs"] += 1
            self._warn("resync", f"stream {chunk.stream_id!r}: the stamp jumped {gap / NS:+.3f} s "
                                 f"(more than max_gap): starting a new utterance there")
            keep = u.offset_ns if gap > 0 else None  # a jump back may be a new clock: check it
            return [self._end("gap" if gap > 0 else "backwards")] + self._begin(chunk, now_ns, keep_offset=keep), True
        # A little back: the chunk overlaps audio already received. Drop it.
        self.counts["chunks_dropped"] += 1
        self._warn("backwards", f"stream {chunk.stream_id!r}: dropped chunk {chunk.sequence}, its stamp "
                                f"is {-gap / NS * 1e3:.1f} ms before the end of the audio already received")
        u.last_sequence = chunk.sequence
        u.last_arrival_ns = now_ns
        return ([self._end("flag")] if chunk.utterance_end else []), False

    def poll(self, *, now_ns: int) -> list:
        """Close an utterance that has had no audio for ``utterance_timeout``."""
        u = self.active
        if u is not None and now_ns - u.last_arrival_ns > self.timeout_ns:
            if u.stream_id in self.marked:
                self.counts["utterances_timed_out"] += 1
            return [self._end("timeout")]
        return []

    def close(self) -> list:
        """End the open utterance now (shutdown, clock reset)."""
        return [self._end("restart")] if self.active is not None else []

    # ------------------------------------------------------------------ internals

    def _problem(self, c: Chunk) -> str | None:
        if not (MIN_RATE <= c.sample_rate <= MAX_RATE):
            return f"sample_rate {c.sample_rate} Hz is outside [{MIN_RATE}, {MAX_RATE}]"
        if c.channels < 1:
            return "channels is 0"
        if len(c.samples) % c.channels:
            return f"{len(c.samples)} samples is not a multiple of channels = {c.channels}"
        if c.frames > MAX_CHUNK_S * c.sample_rate:
            return f"{c.frames / c.sample_rate:.1f} s in one chunk (at most {MAX_CHUNK_S:g} s)"
        if c.frames == 0 and not (c.utterance_start or c.utterance_end):
            return "no samples and no utterance flag"
        return None

    def _begin(self, chunk: Chunk, now_ns: int, *, keep_offset: int | None = None) -> list:
        offset = 0 if keep_offset is None else keep_offset
        # The offset of a re-stamped stream carries over a jump, unless that lands far from now
        # too (a jump to another clock would otherwise put frames years ahead).
        if abs(chunk.stamp_ns + offset - now_ns) > self.max_offset_ns:
            # A zero stamp or another clock: place the utterance where it arrives instead.
            self.counts["restamped"] += 1
            self._warn("restamp", f"stream {chunk.stream_id!r}: utterance {chunk.utterance_id} is stamped "
                                  f"{(chunk.stamp_ns + offset - now_ns) / NS:+.1f} s from this node's clock "
                                  f"(more than max_clock_offset): using its arrival time")
            offset = now_ns - chunk.duration_ns - chunk.stamp_ns
        origin = chunk.stamp_ns + offset
        first = self.grid.index_at_or_before(origin)
        pad = int(round((origin - self.grid.stamp(first)) * ENGINE_RATE / NS))
        self.active = _Utterance(chunk.stream_id, chunk.utterance_id, float(origin), offset,
                                 chunk.sequence, now_ns)
        self.counts["utterances"] += 1
        return [Begin(chunk.utterance_id, first, pad)]

    def _end(self, reason: str) -> End:
        self.active = None
        return End(reason)

    def _warn(self, key: str, message: str) -> None:
        self.warnings.append((key, message))
        del self.warnings[:-100]  # the node drains them; never grow without bound


def _key(chunk: Chunk) -> tuple:
    """What makes two deliveries the same chunk: stream, counter, stamp and content."""
    return (chunk.stream_id, chunk.sequence, chunk.stamp_ns, chunk.sample_rate, chunk.channels,
            len(chunk.samples), hash(chunk.samples.tobytes()))


def _mono(chunk: Chunk) -> np.ndarray:
    x = np.asarray(chunk.samples, dtype=np.int16).reshape(-1, chunk.channels)
    mono = x[:, 0].astype(np.float32) if chunk.channels == 1 else x.mean(axis=1, dtype=np.float64)
    return (np.asarray(mono, np.float32) / np.float32(32768.0)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Engine frames -> grid frames


class GridFrames:
    """Engine frames of one utterance (frame i at i / model_fps) -> grid frames from ``first_frame``."""

    def __init__(self, first_frame: int, *, model_fps: float, grid_fps: float):
        self.first = int(first_frame)
        self.same = model_fps == grid_fps
        self.ratio = model_fps / grid_fps  # model frames per grid frame
        self.next_grid = 0  # next grid frame of the utterance to emit
        self.prev: tuple[int, np.ndarray] | None = None  # last model frame received
        self.expected = 0  # next model index

    def add(self, index: int, weights: np.ndarray) -> list[tuple[int, np.ndarray]]:
        if index != self.expected:
            raise ValueError(f"engine frame {index} arrived, expected {self.expected} (frames must be continuous)")
        self.expected += 1
        if self.same:
            self.next_grid = index + 1
            return [(self.first + index, weights)]
        out = []
        prev, self.prev = self.prev, (index, weights)
        while True:
            pos = self.next_grid * self.ratio
            lo = int(math.floor(pos + 1e-9))
            if lo > index:
                break
            frac = pos - lo
            if lo == index and frac > 1e-9:  # needs the next model frame
                break
            if lo == index or prev is None:
                w = weights
            else:  # lo == index - 1
                w = (prev[1] * (1.0 - frac) + weights * frac).astype(np.float32)
            out.append((self.first + self.next_grid, w))
            self.next_grid += 1
        return out


# ---------------------------------------------------------------------------------------------
# The timeline


@dataclass(frozen=True)
class Emotion:
    text: str  # as given
    label: str  # MEAD emotion
    intensity: int  # 1..3


@dataclass(frozen=True)
class OutFrame:
    index: int  # grid frame index (BlendshapeFrame.frame_index)
    stamp_ns: int  # audio time it depicts
    weights: np.ndarray  # (52,) float32
    speaking: bool
    utterance_id: int
    arrival: float | None  # when the audio that completed this frame arrived (monotonic s); None: idle
    emotion: Emotion  # in force at this frame's audio time


@dataclass
class _Speech:
    weights: np.ndarray
    utterance_id: int
    arrival: float


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class FaceTimeline:
    """Speech frames by grid index + the idle face -> one frame per period, due at stamp + delay.

    Emotion changes are events on the same timeline: a change made at audio time t (the engine
    blends its text in from the newest audio, which is about the time the change arrives)
    applies to the idle face and to the frames' emotion fields from grid frame t on, so all
    three change together, ``delay`` after the message arrived.
    """

    def __init__(self, grid: Grid, idle, *, delay_ns: int, speech_blend_s: float, emotion: Emotion):
        self.grid = grid
        self.idle = idle  # idle_face.IdleFace (anything with frames(times) and set_emotion)
        self._emotions: list[tuple[int, Emotion]] = [(-2**62, emotion)]  # (first grid index, emotion)
        self.delay_ns = int(delay_ns)
        self.step = 1.0 if speech_blend_s <= 0 else grid.period_ns / NS / speech_blend_s
        self.next_index = 0  # next frame to publish
        self._speech: dict[int, _Speech] = {}
        self._mix = 0.0  # 0: idle face, 1: speech
        self._held: _Speech | None = None  # last speech frame shown (faded out after speech ends)
        self.counts: Counter = Counter()

    def due_ns(self, k: int) -> int:
        return self.grid.stamp(k) + self.delay_ns

    def add_speech(self, k: int, weights: np.ndarray, *, utterance_id: int, arrival: float) -> bool:
        """Keep speech frame k until due; False (counted late) if its slot was already published."""
        if k < self.next_index:
            self.counts["late_frames"] += 1
            return False
        self._speech[k] = _Speech(np.asarray(weights, np.float32), utterance_id, arrival)
        return True

    def set_emotion(self, emotion: Emotion, *, at_ns: int) -> int:
        """``emotion`` from audio time ``at_ns`` on (not before the next frame to publish); its grid index."""
        k = max(self.grid.index_at_or_before(at_ns), self.next_index)
        self.idle.set_emotion(emotion.label, emotion.intensity, at=self.grid.seconds(k))
        self._emotions = [e for e in self._emotions if e[0] < k] + [(k, emotion)]
        return k

    @property
    def emotion(self) -> Emotion:
        """The newest emotion set (it may apply to frames not yet published)."""
        return self._emotions[-1][1]

    def pending(self) -> int:
        return len(self._speech)

    def due(self, now_ns: int) -> list[OutFrame]:
        """Frames whose publication time has come (half a period early at most), in order."""
        half = self.grid.period_ns // 2
        last = self.grid.index_at_or_before(now_ns - self.delay_ns + half)
        if last - self.next_index + 1 > MAX_BURST_S * self.grid.fps:
            # Far behind (a stalled process, a clock jump): skip to now rather than burst.
            skip_to = last - int(self.grid.fps)  # still publish the last second, for continuity
            self.counts["frames_skipped"] += skip_to - self.next_index
            for k in [k for k in self._speech if k < skip_to]:
                del self._speech[k]
            self.next_index = skip_to
        out = []
        while self.next_index <= last:
            out.append(self._make(self.next_index))
            self.next_index += 1
        return out

    def _make(self, k: int) -> OutFrame:
        while len(self._emotions) > 1 and self._emotions[1][0] <= k:
            self._emotions.pop(0)
        idle = self.idle.frames([self.grid.seconds(k)])[0]
        speech = self._speech.pop(k, None)
        if speech is not None:
            self._held = speech
            self._mix = min(1.0, self._mix + self.step) if self._mix < 1.0 else 1.0
        else:
            self._mix = max(0.0, self._mix - self.step)
        if self._held is None or self._mix <= 0.0:
            weights = idle
            self._held = None if self._mix <= 0.0 else self._held
        else:
            a = np.float32(_smoothstep(self._mix))
            weights = idle + a * (self._held.weights - idle)
        self.counts["frames_published"] += 1
        self.counts["speech_frames" if speech is not None else "idle_frames"] += 1
        return OutFrame(index=k, stamp_ns=self.grid.stamp(k), weights=np.clip(weights, 0.0, 1.0).astype(np.float32),
                        speaking=speech is not None,
                        utterance_id=speech.utterance_id if speech is not None else
                        (self._held.utterance_id if self._held is not None else 0),
                        arrival=speech.arrival if speech is not None else None, emotion=self._emotions[0][1])
