"""Cost of this project's streaming engine against peer architectures, side by side.

    python bench/peers.py [--seconds 10,60] [--systems ours-default,ours-w2v-clip,lam,faceformer,emotalk]
                          [--threads 2] [--encoder-threads 2] [--device cpu|cuda] [--chunk 1.0] [--small-chunk 0.1]
                          [--model-chunk auto] [--stream-repeats 1]
                          [--offline lam,faceformer,emotalk] [--stream-cap emotalk=10] [--streams auto]
                          [--quick] [--label TEXT] [--out out/bench]

Systems (``bench/peer_models.py`` says what each peer keeps of its published design; all peers
have random weights, whose values do not change the cost):

* ``ours-default``: the shipped default model (Moonshine ONNX + MiniLM + VQ-VAE code predictor)
  through ``Engine`` (push audio, pull frames, flush), as the ROS node runs it.
* ``ours-live``: the shipped low-latency model (causal speech encoder distilled from Moonshine +
  MiniLM + causal VQ-VAE code predictor), what the ROS node runs by default, through ``Engine``.
* ``ours-w2v-clip``: random weights of ``config/train_wav2vec2_clip.yaml`` with full-size
  wav2vec2-base (12 x 768) and CLIP ViT-B/32's text tower, through the same ``Engine``.
* ``lam``: a LAM_Audio2Expression-style streamer: each 1 s chunk re-encodes a 2.13 s window.
* ``faceformer``: FaceFormer-style, the decoder autoregressive over the growing prefix.
* ``emotalk``: EmoTalk-style, two wav2vec2-large encoders, offline; streamed the LAM way.

Measured per system and clip length, each (system, length, mode) in a fresh subprocess so that
peak memories do not mix:

* stream: the clip pushed in ``--chunk`` pieces (1 s, LAM's design) after one warm-up chunk;
  real-time factor = (all pushes + flush) wall time / audio duration; per-chunk latency = wall
  time from handing a chunk over to having its frames back (p50 / p95 / max); frame lag = how far
  the audio time of each frame that came out lies behind the newest audio pushed (the algorithmic
  delay, compute not included); peak memory = the process's max RSS (and CUDA's peak allocation).
  The default model is also streamed in ``--small-chunk`` pieces (what a microphone delivers)
  and in pieces of its own feature chunk (``--model-chunk``, auto: the bundle's plan, 0.96 s):
  with 1 s pieces one push in 24 completes two 0.96 s chunks and runs two encoder passes, which
  sets the p95 of a 10 s clip (10 pushes); with pieces of its own chunk every push runs one.
  ``--stream-repeats N`` runs every stream N times, each in a fresh process, and reports the
  median of each figure with the range of RTF and p95 (this shared machine's timings move by
  +-20 % from run to run).
* offline (``--offline``, the peers by default: FaceFormer and EmoTalk are offline models): the
  whole clip in one call after a 1 s warm-up. Ours offline (``Engine.animate``) runs the same
  encoder passes as its stream, so it is left out unless asked for.
* streams (``--streams``): N streams at once, each in its own thread with its own stream state
  (one shared network), each fed its chunks in real time (starts staggered over one chunk); N
  keeps up when, for every stream, the 95th percentile of (frames ready - chunk complete) is at
  most one chunk and so is the last chunk's. N doubles until it fails, then is bisected.

``--stream-cap SYSTEM=S,...`` streams only the first S seconds of longer clips through systems
whose cost per chunk does not depend on the position in the stream (every one but faceformer:
they re-encode a bounded window); a capped clip that equals a shorter one reuses that run, and
the table says so.

OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE unless set): on a machine shared with
other work, spinning threads that lose their core make every parallel region wait for them
(measured here under load: 30 FaceFormer decoder steps 4.9 s with spinning threads, 0.08 s
without).

Targets (from the project brief) are checked and printed; for a system that misses one a profile
(cProfile by cumulative time, then torch.profiler by self time) of a 10 s stream is written next
to the results as ``peers_profile_<system>.txt``. Output: ``<out>/peers.md`` and ``peers.json``.
Threads default to 2 (this machine's core count), for torch and for onnxruntime alike. Timings
on a machine shared with other work are inflated: the report records the load average.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(REPO_DIR))
sys.path.insert(0, str(BENCH_DIR))

import numpy as np  # noqa: E402

SAMPLE_RATE = 16000
SYSTEMS = {
    "ours-default": "shipped default: Moonshine (ONNX) + MiniLM + VQ-VAE code predictor, Engine",
    "ours-live": "shipped low-latency: causal speech encoder + MiniLM + causal VQ-VAE code predictor, Engine",
    "ours-w2v-clip": "wav2vec2-base + CLIP ViT-B/32 text + VQ-VAE code predictor (random weights), Engine",
    "lam": "LAM_Audio2Expression-style: wav2vec2-base over a 2.13 s window per chunk + conv head",
    "faceformer": "FaceFormer-style: wav2vec2-base + 1-layer 64-d decoder, autoregressive over the prefix",
    "emotalk": "EmoTalk-style: 2 x wav2vec2-large (content, emotion) + 832-d decoder, offline",
}
OURS = ("ours-default", "ours-live", "ours-w2v-clip")
PEERS = ("lam", "faceformer", "emotalk")
SMALL_CHUNK_SYSTEMS = ("ours-default", "ours-live")  # streamed in --small-chunk pieces too
TARGETS_CPU = {"rtf": 0.1, "p95_ms": 100.0, "vs_lam": 3.0}  # ours-default, stream, 1 s chunks
TARGETS_GPU = {"rtf": 0.01, "streams": 8}  # ours-w2v-clip
PROFILE_SECONDS = 10.0


# --------------------------------------------------------------------------------------------- input


def speech(seconds: float) -> np.ndarray:
    """The bundled sample utterance repeated to ``seconds`` (16 kHz mono float32)."""
    from talking_face_ros.speech.audio import load_wav, resample_audio

    audio, rate = load_wav(REPO_DIR / "talking_face_ros" / "assets" / "sample.wav")
    if rate != SAMPLE_RATE:
        audio = resample_audio(audio, rate, SAMPLE_RATE)
    return np.resize(np.asarray(audio, np.float32), int(round(seconds * SAMPLE_RATE)))


def device_name(device: str, threads: int) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(0)} (CUDA), host threads {threads}"
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores visible, {threads} threads used"


# ------------------------------------------------------------------------------------------- systems


class System:
    """A system under test: ``new_stream()`` objects with ``push(chunk) -> frames`` and
    ``flush() -> frames``; ``animate(audio) -> frames``; parameter counts."""

    name: str
    params: int  # torch parameters (network + torch encoders)
    note: str = ""  # what the parameter count leaves out
    fps: float = 30.0


class OursStream:
    def __init__(self, engine):
        self.engine = engine

    def push(self, chunk: np.ndarray) -> int:
        self.engine.push(chunk, SAMPLE_RATE)
        return len(self.engine.pull_arrays()[0])

    def flush(self) -> int:
        self.engine.flush()
        return len(self.engine.pull_arrays()[0])


class Ours(System):
    def __init__(self, name: str, bundle):
        from talking_face_ros.engine import Engine

        self.name, self.bundle, self.fps = name, bundle, bundle.fps
        self.engine = Engine(bundle)
        self.params = sum(p.numel() for p in bundle.model.parameters())
        onnx = []
        for encoder in bundle.encoders:
            module = getattr(encoder, "model", None) or getattr(encoder, "net", None)  # net: the causal encoder
            if hasattr(module, "parameters"):
                self.params += sum(p.numel() for p in module.parameters())
            else:  # onnxruntime: no parameter count, the file size says the scale
                path = getattr(encoder, "model_path", None)
                size = f" {Path(path).stat().st_size / 1e6:.1f} MB" if path and Path(path).is_file() else ""
                onnx.append(f"{encoder.name} ONNX{size}")
        self.note = f"+ {', '.join(onnx)}" if onnx else ""

    def new_stream(self) -> OursStream:
        from talking_face_ros.engine import Engine

        return OursStream(Engine(self.bundle))

    def animate(self, audio: np.ndarray) -> int:
        return len(self.engine.animate(audio, SAMPLE_RATE)[0])


class Peer(System):
    def __init__(self, name: str, model, make_stream, device: str):
        import peer_models

        self.name, self.model, self.make_stream, self.device = name, model, make_stream, device
        self.params = peer_models.parameters(model)

    def new_stream(self) -> "PeerStream":
        return PeerStream(self.make_stream())

    def animate(self, audio: np.ndarray) -> int:
        import torch

        out = self.model.animate(torch.from_numpy(audio)[None].to(self.device))
        return int(out.cpu().shape[0])


class PeerStream:
    """A peer stream whose push/flush report frame counts, like ours."""

    def __init__(self, stream):
        self.stream = stream

    def push(self, chunk: np.ndarray) -> int:
        return len(self.stream.push(chunk))

    def flush(self) -> int:
        return len(self.stream.flush())


def build_system(name: str, *, device: str, threads: int, tiny: bool, workdir: Path,
                 encoder_threads: int | None = None) -> System:
    """``name`` ready to run; ``tiny``: 2-layer encoders everywhere (smoke tests only).

    ``workdir`` holds generated model folders; one already there is reused (the jobs of one run
    share it, so the random wav2vec2 + CLIP bundle is written once)."""
    from transformers.utils import logging as hf_logging

    from talking_face_ros.bundle import load_bundle

    hf_logging.disable_progress_bar()  # one tqdm bar (the jobs') is enough
    if name == "ours-default":
        if tiny:
            from talking_face_ros.bundle import make_random_bundle

            folder = workdir / "ours-default-tiny"
            if not (folder / "bundle.json").is_file():
                make_random_bundle(folder, small=True)
        else:
            from talking_face_ros.paths import DEFAULT_MODEL_DIR as folder
        # Moonshine runs in onnxruntime: its own thread count, as the node's encoder_threads.
        speech = {"threads": encoder_threads or threads}
        if device != "cpu":
            speech["device"] = "auto"
        return Ours(name, load_bundle(folder, device=device, encoder_options={"speech": speech}))
    if name == "ours-live":
        from talking_face_ros.paths import LIVE_MODEL_DIR

        folder = LIVE_MODEL_DIR
        if tiny:
            from talking_face_ros.bundle import random_bundle_of_config

            folder = workdir / "ours-live-tiny"
            if not (folder / "bundle.json").is_file():
                random_bundle_of_config(REPO_DIR / "config" / "train_low_latency.yaml", folder)
        return Ours(name, load_bundle(folder, device=device, encoder_options={"speech": {"threads": threads}}))
    if name == "ours-w2v-clip":
        folder = workdir / ("ours-w2v-clip-tiny" if tiny else "ours-w2v-clip")
        return Ours(name, load_bundle(w2v_clip_bundle(folder, tiny=tiny), device=device))
    if name in ("lam", "faceformer", "emotalk"):
        import peer_models

        model, make_stream = peer_models.build_peer(name, tiny=tiny, device=device)
        return Peer(name, model, make_stream, device)
    raise SystemExit(f"unknown system {name!r}; known: {', '.join(SYSTEMS)}")


def w2v_clip_bundle(folder: Path, *, tiny: bool) -> Path:
    """A bundle of config/train_wav2vec2_clip.yaml's network with random weights, next to random
    full-size wav2vec2-base and CLIP ViT-B/32 folders (hub layout), 18 speakers like the corpus."""
    from transformers import AutoConfig

    from talking_face_ros.bundle import random_bundle_of_config
    from talking_face_ros.corpus.emotion_text import EMOTION_PROMPTS
    from talking_face_ros.encoders.testing import save_random_clip, save_random_wav2vec2

    if (folder / "bundle" / "bundle.json").is_file():
        return folder / "bundle"
    w2v = save_random_wav2vec2(folder / "wav2vec2", full_size=not tiny)
    words = " ".join(EMOTION_PROMPTS.values()).replace(",", " ").split() + ["neutral"]
    clip = save_random_clip(folder / "clip", words, full_size=not tiny)
    encoders = {"speech": {"kind": "wav2vec2", "model": str(w2v)}, "text": {"kind": "clip", "model": str(clip)}}
    return random_bundle_of_config(REPO_DIR / "config" / "train_wav2vec2_clip.yaml", folder / "bundle",
                                   encoders=encoders, speech_dim=AutoConfig.from_pretrained(w2v).hidden_size,
                                   text_dim=AutoConfig.from_pretrained(clip).projection_dim)


# --------------------------------------------------------------------------------------- measurements


def _pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else float("nan")


def measure_stream(system: System, audio: np.ndarray, chunk_s: float) -> dict:
    """Push ``audio`` in ``chunk_s`` pieces into a fresh stream (after one warm-up chunk)."""
    step = max(1, int(round(chunk_s * SAMPLE_RATE)))
    warm = system.new_stream()
    warm.push(audio[:max(step, SAMPLE_RATE)])
    warm.flush()
    stream = system.new_stream()
    latencies, lags, frames = [], [], 0
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(0, len(audio), step):
        chunk = audio[i:i + step]
        t = time.perf_counter()
        made = stream.push(chunk)
        latencies.append(time.perf_counter() - t)
        newest = (i + len(chunk)) / SAMPLE_RATE
        lags.extend(newest - np.arange(frames, frames + made) / system.fps)
        frames += made
    frames += stream.flush()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    seconds = len(audio) / SAMPLE_RATE
    return {"chunk_s": chunk_s, "chunks": len(latencies), "audio_s": seconds, "frames": frames,
            "wall_s": wall, "cpu_s": cpu, "rtf": wall / seconds, "cpu_rtf": cpu / seconds,
            "latency_ms": {"p50": 1e3 * _pct(latencies, 50), "p95": 1e3 * _pct(latencies, 95),
                           "max": 1e3 * max(latencies), "mean": 1e3 * statistics.fmean(latencies)},
            "frame_lag_s": {"max": float(max(lags)) if lags else float("nan"),
                            "mean": float(np.mean(lags)) if lags else float("nan")}}


def measure_offline(system: System, audio: np.ndarray, repeats: int) -> dict:
    """The whole clip in one call, median of ``repeats`` after a 1 s warm-up."""
    system.animate(audio[:SAMPLE_RATE])
    walls, cpus, frames = [], [], 0
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        frames = system.animate(audio)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    seconds = len(audio) / SAMPLE_RATE
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {"audio_s": seconds, "frames": frames, "wall_s": wall, "cpu_s": cpu, "rtf": wall / seconds,
            "cpu_rtf": cpu / seconds, "repeats": repeats}


def realtime_trial(system: System, audio: np.ndarray, chunk_s: float, n: int) -> dict:
    """``n`` streams fed in real time at once; whether every one keeps up."""
    step = max(1, int(round(chunk_s * SAMPLE_RATE)))
    chunks = [audio[i:i + step] for i in range(0, len(audio), step)]
    streams = [system.new_stream() for _ in range(n)]
    lags: list[list[float]] = [[] for _ in range(n)]
    abort = threading.Event()
    errors: list[str] = []
    start = time.perf_counter() + 0.2

    def feed(k: int) -> None:
        offset = start + k * chunk_s / n  # staggered: independent speakers do not start together
        try:
            for i, chunk in enumerate(chunks):
                due = offset + (i + 1) * chunk_s  # the chunk is complete at this time
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                streams[k].push(chunk)
                lags[k].append(time.perf_counter() - due)
                if lags[k][-1] > 3 * chunk_s + 1.0 or abort.is_set():  # hopelessly behind: stop the trial
                    abort.set()
                    return
        except Exception as exc:  # noqa: BLE001 - reported in the result
            errors.append(f"{type(exc).__name__}: {exc}")
            abort.set()

    threads = [threading.Thread(target=feed, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    complete = not abort.is_set() and all(len(x) == len(chunks) for x in lags)
    p95 = max(_pct(x, 95) for x in lags) if all(lags) else float("inf")
    last = max(x[-1] for x in lags) if all(lags) else float("inf")
    ok = complete and not errors and p95 <= chunk_s and last <= chunk_s
    return {"streams": n, "keeps_up": ok, "worst_p95_lag_s": p95, "worst_last_lag_s": last,
            "errors": errors[:3]}


def measure_streams(system: System, audio: np.ndarray, chunk_s: float, limit: int) -> dict:
    """Most concurrent real-time streams: doubling, then bisection."""
    system.new_stream().push(audio[:SAMPLE_RATE])  # warm-up
    trials, good, bad = [], 0, None
    n = 1
    while n <= limit:
        trial = realtime_trial(system, audio, chunk_s, n)
        trials.append(trial)
        if not trial["keeps_up"]:
            bad = n
            break
        good, n = n, n * 2
    if bad is None and good < limit:
        bad = limit + 1
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        trial = realtime_trial(system, audio, chunk_s, mid)
        trials.append(trial)
        good, bad = (mid, bad) if trial["keeps_up"] else (good, mid)
    return {"max_streams": good, "limit": limit, "chunk_s": chunk_s, "audio_s": len(audio) / SAMPLE_RATE,
            "trials": trials}


def profile_stream(system: System, audio: np.ndarray, chunk_s: float, device: str) -> str:
    """cProfile (cumulative) and torch.profiler (self time) of one stream, as text."""
    import cProfile
    import io
    import pstats

    import torch

    measure_stream(system, audio[:SAMPLE_RATE * 2], chunk_s)  # warm-up
    prof = cProfile.Profile()
    prof.enable()
    result = measure_stream(system, audio, chunk_s)
    prof.disable()
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    stats.sort_stats("cumulative").print_stats(40)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as tprof:
        measure_stream(system, audio, chunk_s)
    sort = "self_device_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    table = tprof.key_averages().table(sort_by=sort, row_limit=30)
    head = (f"# profile of {system.name}: {result['audio_s']:.0f} s streamed in {chunk_s:g} s chunks, "
            f"real-time factor {result['rtf']:.3f} (with cProfile on), p95 chunk latency "
            f"{result['latency_ms']['p95']:.0f} ms\n# device: {device}; torch threads {torch.get_num_threads()}\n"
            "# ONNX Runtime work (Moonshine) shows as InferenceSession.run in cProfile only.\n")
    return (head + "\n## cProfile, by cumulative time\n" + text.getvalue()
            + "\n## torch.profiler, by self time\n" + table)


# ---------------------------------------------------------------------------------------------- worker


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run_job(job: dict) -> dict:
    """One measurement (``job["mode"]``: stream, offline, streams, profile) of one system."""
    import torch

    torch.set_num_threads(job["threads"])
    device = job["device"]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    audio = speech(job["seconds"])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        system = build_system(job["system"], device=device, threads=job["threads"], tiny=job["tiny"],
                              workdir=Path(job.get("workdir") or tmp), encoder_threads=job.get("encoder_threads"))
        out = {"system": job["system"], "mode": job["mode"], "seconds": job["seconds"],
               "build_s": time.perf_counter() - t0, "params": system.params, "params_note": system.note,
               "rss_after_build_mb": _rss_mb(), "torch_threads": torch.get_num_threads()}
        mode = job["mode"]
        if mode == "stream":
            limit = job.get("stream_limit_s") or 0
            clip = audio[:int(limit * SAMPLE_RATE)] if 0 < limit < job["seconds"] else audio
            out.update(measure_stream(system, clip, job["chunk_s"]))
            out["clip_s"] = job["seconds"]
        elif mode == "offline":
            out.update(measure_offline(system, audio, job["repeats"]))
        elif mode == "streams":
            out.update(measure_streams(system, audio, job["chunk_s"], job["max_streams"]))
        elif mode == "profile":
            path = Path(job["profile_path"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(profile_stream(system, audio, job["chunk_s"], device))
            out["profile"] = str(path)
        else:
            raise ValueError(f"unknown mode {mode!r}")
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_subprocess(job: dict, timeout: float | None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(job["threads"]), MKL_NUM_THREADS=str(job["threads"]))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
                              capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**_job_key(job), "error": f"timed out after {timeout:g} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
    return {**_job_key(job), "error": f"exit status {proc.returncode}: " + " | ".join(tail)}


def _effective_s(job: dict) -> float:
    limit = job.get("stream_limit_s") or 0
    return limit if job["mode"] == "stream" and 0 < limit < job["seconds"] else job["seconds"]


def _job_key(job: dict) -> dict:
    return {k: job[k] for k in ("system", "mode", "seconds") if k in job} | {"chunk_s": job.get("chunk_s")}


# --------------------------------------------------------------------------------------------- report


def _find(results, system, mode, seconds, chunk_s=None):
    for r in results:
        if (r.get("system") == system and r.get("mode") == mode and r.get("seconds") == seconds
                and "error" not in r and (chunk_s is None or abs(r.get("chunk_s", 0) - chunk_s) < 1e-9)):
            return r
    return None


def check_targets(results, args) -> list[dict]:
    """The brief's targets against what was measured; each with met True/False/None (not measured)."""
    checks = []
    if args.device == "cpu":
        for s in args.seconds:
            ours = _find(results, "ours-default", "stream", s, args.chunk)
            lam = _find(results, "lam", "stream", s, args.chunk)
            rtf = ours["rtf"] if ours else None
            p95 = ours["latency_ms"]["p95"] if ours else None
            ratio = lam["rtf"] / ours["rtf"] if ours and lam else None
            checks += [
                {"system": "ours-default", "what": f"stream RTF, {s:g} s", "target": f"<= {TARGETS_CPU['rtf']}",
                 "value": rtf, "met": None if rtf is None else rtf <= TARGETS_CPU["rtf"]},
                {"system": "ours-default", "what": f"p95 chunk latency ms ({args.chunk:g} s chunks), {s:g} s",
                 "target": f"<= {TARGETS_CPU['p95_ms']:g}", "value": p95,
                 "met": None if p95 is None else p95 <= TARGETS_CPU["p95_ms"]},
                {"system": "ours-default", "what": f"speed-up over LAM-style stream, {s:g} s",
                 "target": f">= {TARGETS_CPU['vs_lam']:g}x", "value": ratio,
                 "met": None if ratio is None else ratio >= TARGETS_CPU["vs_lam"]}]
            own = _find(results, "ours-default", "stream", s, args.model_chunk) if args.model_chunk else None
            if own is not None and abs(args.model_chunk - args.chunk) > 1e-9:
                p95 = own["latency_ms"]["p95"]
                checks.insert(len(checks) - 1, {
                    "system": "ours-default", "what": f"p95 chunk latency ms ({args.model_chunk:g} s chunks, "
                    f"the model's own), {s:g} s", "target": f"<= {TARGETS_CPU['p95_ms']:g}", "value": p95,
                    "met": p95 <= TARGETS_CPU["p95_ms"]})
    else:
        for s in args.seconds:
            ours = _find(results, "ours-w2v-clip", "stream", s, args.chunk)
            rtf = ours["rtf"] if ours else None
            checks.append({"system": "ours-w2v-clip", "what": f"stream RTF on GPU, {s:g} s",
                           "target": f"<= {TARGETS_GPU['rtf']}", "value": rtf,
                           "met": None if rtf is None else rtf <= TARGETS_GPU["rtf"]})
        st = next((r for r in results if r.get("system") == "ours-w2v-clip" and r.get("mode") == "streams"
                   and "error" not in r), None)
        n = st["max_streams"] if st else None
        checks.append({"system": "ours-w2v-clip", "what": "concurrent real-time streams on GPU",
                       "target": f">= {TARGETS_GPU['streams']}", "value": n,
                       "met": None if n is None else n >= TARGETS_GPU["streams"]})
    return checks


def _f(x, fmt="{:.3f}", none="n/a"):
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def _row(results, name: str, s: float, c: float, lam, off, args) -> str:
    """One table row: ``name`` streamed in ``c`` s chunks on the ``s`` s clip (+ its offline run)."""
    st = _find(results, name, "stream", s, c)
    any_r = st or off
    params = _f(any_r["params"] / 1e6, "{:.1f}") if any_r else "n/a"
    if any_r and any_r.get("params_note"):
        params += f" {any_r['params_note']}"
    offline = f"{off['rtf']:.3f} ({off['cpu_rtf']:.3f})" if off else ""
    if st is None:
        err = next((r["error"] for r in results if r.get("system") == name and r.get("seconds") == s
                    and r.get("mode") == "stream" and r.get("chunk_s") == c and "error" in r), None)
        return f"| {name} | {params} | {c:g} | {'error: ' + err if err else 'n/a'} | | | | {offline} | |"
    lat = st["latency_ms"]
    ratio = lam["rtf"] / st["rtf"] if lam and c == args.chunk else None
    streamed = ""
    if st["audio_s"] < s - 1e-6:
        streamed = f" (first {st['audio_s']:g} s" + (
            f", the {st['same_run_as_s']:g} s run)" if "same_run_as_s" in st else ")")
    mem = f"{st['peak_rss_mb']:.0f} / {_f(off['peak_rss_mb'], '{:.0f}') if off else ''}"
    if "peak_cuda_mb" in st:
        mem += f" (CUDA {st['peak_cuda_mb']:.0f}" + (f" / {off['peak_cuda_mb']:.0f}" if off else "") + ")"
    lag = _f(st["frame_lag_s"]["max"], "{:.2f}", "all at flush")
    spread_rtf = spread_p95 = ""
    if "rtf_range" in st:  # repeated runs: medians, with the range over the runs
        spread_rtf = f" [{st['rtf_range'][0]:.3f}-{st['rtf_range'][1]:.3f}, {st['runs']} runs]"
        spread_p95 = f" [p95 {st['p95_range'][0]:.0f}-{st['p95_range'][1]:.0f}]"
    return (f"| {name} | {params} | {c:g} | {st['rtf']:.3f} ({st['cpu_rtf']:.3f}){spread_rtf}{streamed} "
            f"| {_f(ratio, '{:.1f}x', '')} | {lat['p50']:.0f} / {lat['p95']:.0f} / {lat['max']:.0f}{spread_p95} "
            f"| {lag} | {offline} | {mem} |")


def markdown(results, checks, meta, args) -> str:
    lines = [f"# Peer benchmark ({meta['device_name']})", "",
             f"Command: `{meta['command']}`  ", f"Date: {meta['date']}; torch {meta['torch']}; "
             f"load average {meta['load_before']:.1f} before, {meta['load_after']:.1f} after "
             f"({os.cpu_count()} cores); OMP_WAIT_POLICY {meta['omp_wait_policy']}; wall "
             f"{meta['wall_s'] / 60:.1f} min; the default model's Moonshine pass on "
             f"{meta.get('encoder_threads') or meta['threads']} onnxruntime threads.", ""]
    if meta.get("label"):
        lines += [f"**{meta['label']}**", ""]
    if args.in_process:
        lines += ["In-process run: peak memories of different systems mix (smoke test only).", ""]
    lines += ["RTF = wall time / audio duration (lower is faster; < 1 keeps up); in brackets the process's CPU "
              "time / audio duration (summed over threads; on a loaded machine closer to the uncontended cost). "
              "Chunk latency = handing a "
              "chunk over until its frames are back. Frame lag = newest audio time - audio time of a frame "
              "as it comes out (algorithmic delay, compute excluded). x LAM = LAM-style stream RTF / this "
              "stream RTF (> 1: faster than LAM).", ""]
    for s in args.seconds:
        lines += [f"## {s:g} s of speech", "",
                  "| system | params (M) | chunk s | stream RTF (CPU) | x LAM | chunk latency p50 / p95 / max ms "
                  "| frame lag max s | offline RTF (CPU) | peak RSS MB stream / offline |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lam = _find(results, "lam", "stream", s, args.chunk)
        for name in args.systems:
            off = _find(results, name, "offline", s)
            for c in chunks_of(name, args):
                lines.append(_row(results, name, s, c, lam, off if c == args.chunk else None, args))
        lines.append("")
    streams = [r for r in results if r.get("mode") == "streams"]
    if streams:
        lines += ["## Concurrent real-time streams", "",
                  "| system | max streams keeping up | chunk s | trials (N: ok) |", "|---|---|---|---|"]
        for r in streams:
            if "error" in r:
                lines.append(f"| {r['system']} | error: {r['error']} | | |")
                continue
            trials = ", ".join(f"{t['streams']}: {'yes' if t['keeps_up'] else 'no'}" for t in r["trials"])
            lines.append(f"| {r['system']} | {r['max_streams']} (tried up to {r['limit']}) | {r['chunk_s']:g} "
                         f"| {trials} |")
        lines.append("")
    lines += ["## Targets", "", "| system | what | target | measured | met |", "|---|---|---|---|---|"]
    for c in checks:
        met = "not measured" if c["met"] is None else ("yes" if c["met"] else "**no**")
        lines.append(f"| {c['system']} | {c['what']} | {c['target']} | {_f(c['value'], '{:.3g}')} | {met} |")
    profiles = [r for r in results if r.get("mode") == "profile"]
    if profiles:
        lines += ["", "Profiles of the systems that miss a target (where the time goes):", ""]
        lines += [f"- {r['system']}: `{r.get('profile', r.get('error'))}`" for r in profiles]
    lines += ["", "## Systems", ""] + [f"- `{n}`: {SYSTEMS[n]}" for n in args.systems]
    lines += ["", "Peers: random weights, designs as described in `bench/peer_models.py` (FaceFormer with a "
              "52-weight head: a lower bound of its vertex-head cost; EmoTalk streamed as a 2.13 s window per "
              "chunk, an emulation: its published model is offline). Ours: the same `Engine` the ROS node uses."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", default=None, help="clip lengths, comma separated (default 10,60; --quick: 2)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma separated, of: {', '.join(SYSTEMS)}")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch and onnxruntime (default 2)")
    p.add_argument("--encoder-threads", type=int, default=2,
                   help="onnxruntime threads of the default model's Moonshine pass (the node's encoder_threads, "
                        "default 2); 0: as --threads")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--chunk", type=float, default=1.0, help="stream chunk seconds for every system (LAM: 1 s)")
    p.add_argument("--small-chunk", type=float, default=0.1,
                   help="extra stream rows of the default model at this chunk (0: none)")
    p.add_argument("--model-chunk", default="auto",
                   help="also stream the default model in pieces of this many seconds (auto: its plan's chunk; 0: no)")
    p.add_argument("--stream-repeats", type=int, default=1,
                   help="runs of every stream, each in a fresh process (median reported, with the range)")
    p.add_argument("--offline", default=",".join(PEERS), help="systems also run offline; all or none")
    p.add_argument("--repeats", type=int, default=1, help="offline runs per row (median)")
    p.add_argument("--stream-cap", default="",
                   help="SYSTEM=S,...: stream only the first S s of longer clips through these systems (not "
                        "faceformer, whose cost per chunk grows along the stream)")
    p.add_argument("--streams", default="auto",
                   help="systems whose concurrent real-time streams are counted; auto: ours-default on CPU, "
                        "ours-default,ours-w2v-clip,lam on CUDA; none: skip")
    p.add_argument("--streams-seconds", type=float, default=10.0, help="audio per stream in each concurrency trial")
    p.add_argument("--max-streams", type=int, default=0, help="largest N tried (0: 8 on CPU, 64 on CUDA)")
    p.add_argument("--no-profile", action="store_true", help="no profile for a missed target")
    p.add_argument("--quick", action="store_true", help="2 s clips, 2 s concurrency trials: a smoke test")
    p.add_argument("--tiny", action="store_true", help="2-layer random encoders everywhere (tests only)")
    p.add_argument("--in-process", action="store_true", help="run every job here (tests; peak memories mix)")
    p.add_argument("--job-timeout", type=float, default=None, help="seconds before a job is abandoned")
    p.add_argument("--label", default="", help="a line printed at the top of the report, e.g. the machine's state")
    p.add_argument("--out", type=Path, default=REPO_DIR / "out" / "bench", help="folder for peers.md / peers.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return args
    if args.seconds is None:
        args.seconds = "2" if args.quick else "10,60"
    if args.quick:
        args.streams_seconds = min(args.streams_seconds, 2.0)
    try:
        args.seconds = [float(s) for s in str(args.seconds).split(",") if s.strip()]
    except ValueError:
        p.error(f"--seconds: expected numbers like 10,60, got {args.seconds!r}")
    if not args.seconds or min(args.seconds) <= 0:
        p.error("--seconds: give positive lengths")
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in SYSTEMS]
    if unknown:
        p.error(f"--systems: unknown {unknown}; known: {', '.join(SYSTEMS)}")
    named = {"all": list(SYSTEMS), "none": []}
    args.offline = named[args.offline] if args.offline in named else \
        [s.strip() for s in args.offline.split(",") if s.strip()]
    if set(args.offline) - set(SYSTEMS):
        p.error(f"--offline: unknown {sorted(set(args.offline) - set(SYSTEMS))}; known: {', '.join(SYSTEMS)}")
    if args.threads < 1 or args.encoder_threads < 0 or args.chunk <= 0 or args.small_chunk < 0 \
            or args.stream_repeats < 1:
        p.error("--threads must be >= 1, --encoder-threads >= 0, --chunk > 0, --small-chunk >= 0, "
                "--stream-repeats >= 1")
    try:
        args.model_chunk = default_model_chunk() if args.model_chunk == "auto" else float(args.model_chunk)
    except (ValueError, OSError, KeyError) as exc:
        p.error(f"--model-chunk: expected seconds or 'auto', got {args.model_chunk!r} ({exc})")
    if args.model_chunk < 0:
        p.error("--model-chunk must be >= 0")
    caps = {}
    for item in filter(None, (x.strip() for x in args.stream_cap.split(","))):
        name, sep, value = item.partition("=")
        try:
            caps[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or name.strip() not in SYSTEMS or name.strip() == "faceformer" or caps[name.strip()] <= 0:
            p.error(f"--stream-cap: expected SYSTEM=SECONDS (S > 0, any system but faceformer), got {item!r}")
    args.stream_cap = caps
    if args.streams == "auto":
        args.streams = ["ours-default"] if args.device == "cpu" else ["ours-default", "ours-w2v-clip", "lam"]
    elif args.streams == "none":
        args.streams = []
    else:
        args.streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    args.streams = [s for s in args.streams if s in args.systems]
    args.max_streams = args.max_streams or (8 if args.device == "cpu" else 64)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            p.error("--device cuda: torch sees no CUDA GPU here")
    return args


def chunks_of(name: str, args) -> list[float]:
    if name not in SMALL_CHUNK_SYSTEMS:
        return [args.chunk]
    extra = [c for c in (args.model_chunk, args.small_chunk) if c and abs(c - args.chunk) > 1e-9]
    return [args.chunk] + extra


def default_model_chunk() -> float:
    """The shipped default bundle's feature chunk (its plan's ``chunk_s``)."""
    meta = json.loads((REPO_DIR / "talking_face_ros" / "assets" / "default_model" / "bundle.json").read_text())
    return float(meta["plan"]["chunk_s"])


def merge_runs(runs: list[dict]) -> dict:
    """One stream row from repeated runs: the median of each figure, the range of RTF and p95."""
    ok = [r for r in runs if "error" not in r]
    if len(ok) <= 1:  # one run, or every run but one failed (or all: the first error is reported)
        return ok[0] if ok else runs[0]
    med = lambda values: float(statistics.median(values))  # noqa: E731
    out = dict(ok[0])
    for key in ("wall_s", "cpu_s", "rtf", "cpu_rtf"):
        out[key] = med([r[key] for r in ok])
    out["latency_ms"] = {k: med([r["latency_ms"][k] for r in ok]) for k in ok[0]["latency_ms"]}
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in ok)
    out["runs"] = len(ok)
    out["rtf_range"] = [min(r["rtf"] for r in ok), max(r["rtf"] for r in ok)]
    out["p95_range"] = [min(r["latency_ms"]["p95"] for r in ok), max(r["latency_ms"]["p95"] for r in ok)]
    return out


def jobs_for(args, workdir: Path) -> list[dict]:
    base = {"threads": args.threads, "encoder_threads": args.encoder_threads, "device": args.device,
            "tiny": args.tiny, "repeats": args.repeats,
            "workdir": str(workdir)}
    jobs = []
    for name in args.systems:
        for s in args.seconds:
            for c in chunks_of(name, args):
                limit = args.stream_cap.get(name, 0.0)
                jobs.append({**base, "system": name, "mode": "stream", "seconds": s, "chunk_s": c,
                             "stream_limit_s": limit})
            if name in args.offline:
                jobs.append({**base, "system": name, "mode": "offline", "seconds": s})
    for name in args.streams:
        jobs.append({**base, "system": name, "mode": "streams", "seconds": args.streams_seconds,
                     "chunk_s": args.chunk, "max_streams": args.max_streams})
    return jobs


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = run_job(json.loads(args.worker))
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    from tqdm import tqdm

    import torch

    torch.set_num_threads(args.threads)
    t_start, load_before = time.perf_counter(), os.getloadavg()[0]
    run = (lambda job: run_job(job)) if args.in_process else (lambda job: run_subprocess(job, args.job_timeout))
    results = []
    with tempfile.TemporaryDirectory(prefix="peers-") as workdir:
        jobs = jobs_for(args, Path(workdir))
        with tqdm(jobs, desc="peers", unit="job") as bar:
            done = {}  # (system, mode, chunk, seconds actually streamed) -> result
            for job in bar:
                bar.set_postfix_str(f"{job['system']} {job['mode']} {job['seconds']:g}s")
                key = (job["system"], job["mode"], job.get("chunk_s"), _effective_s(job))
                if key in done:  # a capped clip that another length already streamed
                    results.append({**done[key], "seconds": job["seconds"], "same_run_as_s": done[key]["seconds"]})
                    continue
                repeats = args.stream_repeats if job["mode"] == "stream" else 1
                results.append(merge_runs([run(job) for _ in range(repeats)]))
                done[key] = results[-1]
                if "error" in results[-1]:
                    tqdm.write(f"{job['system']} {job['mode']} {job['seconds']:g} s failed: {results[-1]['error']}")
        checks = check_targets(results, args)
        missed = sorted({c["system"] for c in checks if c["met"] is False})
        if missed and not args.no_profile:
            for name in tqdm(missed, desc="profiles", unit="system"):
                job = {"threads": args.threads, "encoder_threads": args.encoder_threads, "device": args.device,
                       "tiny": args.tiny, "system": name,
                       "mode": "profile", "seconds": min(PROFILE_SECONDS, max(args.seconds)), "chunk_s": args.chunk,
                       "profile_path": str(args.out / f"peers_profile_{name}.txt"), "workdir": workdir}
                results.append(run(job))
    meta = {"device_name": device_name(args.device, args.threads), "device": args.device,
            "threads": args.threads, "encoder_threads": args.encoder_threads, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M"),
            "command": " ".join([Path(sys.executable).name, "bench/peers.py"] + (argv if argv is not None
                                                                               else sys.argv[1:])),
            "load_before": load_before, "load_after": os.getloadavg()[0], "wall_s": time.perf_counter() - t_start,
            "label": args.label, "in_process": args.in_process,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "PASSIVE" if not args.in_process else "default")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.json").write_text(json.dumps({"meta": meta, "results": results, "targets": checks},
                                                    indent=1, default=float))
    text = markdown(results, checks, meta, args)
    (args.out / "peers.md").write_text(text)
    print(text)
    print(f"wrote {args.out / 'peers.md'} and {args.out / 'peers.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
