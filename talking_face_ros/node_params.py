"""The talking face node's parameters: one table with defaults, descriptions and ranges.

The table is plain Python so that config/talking_face.yaml, the node and the tests share it
without ROS. ``declare(node)`` turns it into ROS parameters (rcl_interfaces descriptors with
FloatingPointRange / IntegerRange, read-only: the node does not re-plan at run time) and
returns validated ``NodeParams``; every bad value raises ``ParameterError`` with one line that
names the parameter, the value and what is allowed, which the node prints before exiting.

Timing parameters, and how they fit together (all seconds of audio time):

* the engine emits the frame for audio time t once it has audio up to about
  t + ``engine.latency_s`` (chunk wait + encoder right context + model lookahead);
* ``lookahead`` is the most latency the node accepts from a model: a bundle needing more is
  refused at start-up instead of running with a face seconds behind;
* ``delay``: the frame for audio time t is published at clock time t + delay; 0 picks
  engine latency + ``delay_margin`` (the margin covers the chunk length, transport and
  compute time). A constant delay is what lets a player delay its audio to match.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("torch", "onnx")  # bundle.BACKENDS (not imported: this table loads without torch)
PRECISIONS = ("auto", "fp32", "fp16")  # bundle.PRECISIONS


class ParameterError(ValueError):
    """A bad parameter value; the message is one line fit for the user."""


@dataclass(frozen=True)
class Spec:
    name: str
    default: object
    description: str
    low: float | None = None  # inclusive range for numbers
    high: float | None = None
    choices: tuple[str, ...] | None = None


# delay_margin -1 (auto): what covers a piece's compute time, transport and a busy CPU's spikes.
# A chunked encoder (Moonshine) runs one ~50-100 ms pass per 0.96 s chunk, all at once; a causal
# one (encoders/causal_speech.py) a few ms per 20 ms piece (bench/node_latency.py measures both).
AUTO_MARGIN_CHUNKED_S = 0.5
AUTO_MARGIN_CAUSAL_S = 0.06

SPECS: tuple[Spec, ...] = (
    Spec("model", "", "Model bundle folder (bundle.json + model.safetensors); empty: the shipped "
         "low-latency model talking_face_ros/assets/low_latency_model (else assets/default_model)"),
    Spec("device", "auto", "Where the networks run: auto (CUDA when available), cpu or cuda", choices=DEVICES),
    Spec("backend", "torch", "How the motion network runs: torch (PyTorch) or onnx (onnxruntime with "
         "TensorRT > CUDA > CPU execution providers; the bundle is exported to ONNX once, cached)",
         choices=BACKENDS),
    Spec("precision", "auto", "Floating-point precision of the network: auto (fp16 on CUDA, fp32 on "
         "the CPU), fp32 or fp16 (backend onnx: fp16 applies to TensorRT only)", choices=PRECISIONS),
    Spec("threads", 1, "CPU threads for torch and a torch speech encoder; 0: the libraries' defaults "
         "(all cores, slower when other processes share them)", 0, 64),
    Spec("encoder_threads", 2, "CPU threads of one pass of an onnxruntime speech encoder (Moonshine, the "
         "default model's): one pass is one large graph that two threads share well (a 2.1 s pass in "
         "35 instead of 52 ms on 2 cores, bench/encoders.py), unlike torch's small operations; 0: all cores", 0, 64),
    Spec("engine_process", True, "Run the engine (networks, emotion text) in a child process, so that its "
         "work never holds up the frame timer (steady frame intervals); false: a thread of the node's "
         "process (one process less, about 50 MB less memory, a few ms more frame jitter on a busy CPU)"),
    Spec("engine_nice", 0, "Niceness added to the engine's child process once it has loaded: when "
         "the node is the machine's main load, a frame falling due takes a core from the engine sooner "
         "(steadier frame intervals); with other busy processes the engine gets a smaller share and "
         "frames come late (bench/node_latency.py --busy). 0: the node's priority. Ignored with "
         "engine_process false", 0, 19),
    Spec("fps", 30.0, "Frames per second published on blendshapes, idle or speaking", 1.0, 120.0),
    Spec("lookahead", 3.0, "Most audio lookahead in seconds accepted from the model (engine latency); "
         "a model needing more refuses to start", 0.0, 30.0),
    Spec("delay", 0.0, "Seconds from a frame's audio time to its publication, constant; "
         "0: engine latency + delay_margin", 0.0, 60.0),
    Spec("delay_margin", -1.0, "Seconds added to the engine latency when delay is 0 (chunk length, "
         "transport, compute time); -1: auto, 0.5 for a model whose speech encoder runs in chunks "
         "(Moonshine, wav2vec2), 0.06 for a causal one (the low-latency model)", -1.0, 10.0),
    Spec("step_frames", 0, "Run the network once this many new frames of speech arrived (more: "
         "less CPU, (step_frames - 1) / fps more delay); 0: auto, 2 for a causal speech encoder "
         "(the low-latency model), 1 otherwise", 0, 30),
    Spec("default_emotion", "", "Emotion text used at start and for an empty emotion message; "
         "empty: the model's default emotion"),
    Spec("identity", "default", "Speaker identity: one of the model's identities (e.g. a corpus "
         "voice such as us_f1), or default"),
    Spec("emotion_blend_s", 0.5, "Seconds over which a new emotion text blends in", 0.0, 10.0),
    Spec("speech_blend_s", 0.1, "Seconds of crossfade between the face at rest and speech", 0.0, 2.0),
    Spec("max_gap", 1.0, "Audio gaps inside an utterance up to this many seconds are filled with "
         "silence; a longer gap starts a new utterance", 0.0, 60.0),
    Spec("utterance_timeout", 1.0, "Seconds without audio after which an utterance that never got "
         "its utterance_end flag is closed", 0.05, 60.0),
    Spec("max_clock_offset", 30.0, "An utterance stamped further than this many seconds from the "
         "node's clock (a zero or foreign stamp) is re-stamped with its arrival time", 0.1, 86400.0),
    Spec("max_queue", 10.0, "Seconds of audio the node holds beyond real time (waiting for the engine, "
         "or sent ahead of real time); beyond, the newest chunks are dropped (counted in diagnostics)",
         0.5, 600.0),
    Spec("seed", 0, "Seed of blinks and gaze of the face at rest", 0, 2**31 - 1),
    Spec("frame_id", "face", "header.frame_id of the published frames (and of face_mesh)"),
    Spec("publish_mesh", False, "Also publish the deforming face as visualization_msgs/Marker "
         "(TRIANGLE_LIST) on face_mesh, for RViz (config/face.rviz)"),
    Spec("mesh_rig", "robot", "Rig of face_mesh: robot (built in), ict (ICT-FaceKit) or a rig .npz file"),
    Spec("mesh_region", "face", "Rig region shown on face_mesh (face keeps bandwidth down; "
         "'all' = the whole rig)"),
    Spec("mesh_decimate", 0.0, "Decimation cluster size of face_mesh in rig units (cm); 0 = full mesh",
         0.0, 10.0),
    Spec("mesh_colors", "vertex", "Colours of face_mesh: vertex, face (per triangle) or none "
         "(one lit colour, 60% of the bytes)", choices=("vertex", "face", "none")),
)
SPEC_BY_NAME = {s.name: s for s in SPECS}


@dataclass(frozen=True)
class NodeParams:
    model: str = ""
    device: str = "auto"
    backend: str = "torch"
    precision: str = "auto"
    threads: int = 1
    encoder_threads: int = 2
    engine_process: bool = True
    engine_nice: int = 0
    fps: float = 30.0
    lookahead: float = 3.0
    delay: float = 0.0
    delay_margin: float = -1.0
    step_frames: int = 0
    default_emotion: str = ""
    identity: str = "default"
    emotion_blend_s: float = 0.5
    speech_blend_s: float = 0.1
    max_gap: float = 1.0
    utterance_timeout: float = 1.0
    max_clock_offset: float = 30.0
    max_queue: float = 10.0
    seed: int = 0
    frame_id: str = "face"
    publish_mesh: bool = False
    mesh_rig: str = "robot"
    mesh_region: str = "face"
    mesh_decimate: float = 0.0
    mesh_colors: str = "vertex"

    def __post_init__(self):
        for f in fields(self):
            check(f.name, getattr(self, f.name))

    def delay_for(self, engine_latency_s: float, *, causal: bool = False) -> float:
        """The publication delay in seconds for an engine of this latency (``causal``: its speech
        features stream causally, so a piece costs little); ParameterError if too short."""
        if engine_latency_s > self.lookahead + 1e-9:
            raise ParameterError(
                f"the model needs {engine_latency_s:.3f} s of audio lookahead, more than parameter "
                f"lookahead = {self.lookahead:g} s: raise lookahead or use a model with less lookahead")
        if self.delay == 0.0:
            margin = self.delay_margin if self.delay_margin >= 0 else \
                AUTO_MARGIN_CAUSAL_S if causal else AUTO_MARGIN_CHUNKED_S
            return engine_latency_s + margin
        if self.delay < engine_latency_s:
            raise ParameterError(
                f"parameter delay = {self.delay:g} s is shorter than the engine latency "
                f"{engine_latency_s:.3f} s: every speech frame would be late; use delay >= "
                f"{engine_latency_s:.3f} or 0 (auto)")
        return self.delay


def check(name: str, value):
    """``value`` if it suits parameter ``name``; ParameterError naming both otherwise."""
    spec = SPEC_BY_NAME.get(name)
    if spec is None:
        raise ParameterError(f"unknown parameter {name!r}; known: {', '.join(SPEC_BY_NAME)}")
    kind = type(spec.default)
    if kind is bool:
        if not isinstance(value, bool):
            raise ParameterError(f"parameter {name} = {value!r}: expected true or false")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ParameterError(f"parameter {name} = {value!r}: expected a finite number")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"parameter {name} = {value!r}: expected an integer")
    elif not isinstance(value, str):
        raise ParameterError(f"parameter {name} = {value!r}: expected a string")
    if name == "delay_margin" and -1.0 < value < 0.0:
        raise ParameterError(f"parameter delay_margin = {value!r}: expected -1 (auto) or a number of seconds >= 0")
    if spec.low is not None and not (spec.low <= value <= spec.high):
        raise ParameterError(f"parameter {name} = {value!r} is outside [{spec.low:g}, {spec.high:g}]: "
                             f"{spec.description}")
    if spec.choices is not None and value not in spec.choices:
        raise ParameterError(f"parameter {name} = {value!r}: expected one of {', '.join(spec.choices)}")
    return value


def declare(node) -> NodeParams:
    """Declare every parameter on ``node`` (overrides from --ros-args apply) and validate them."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    values = {}
    for spec in SPECS:
        descriptor = ParameterDescriptor(description=spec.description, read_only=True)
        if spec.choices:
            descriptor.additional_constraints = f"one of: {', '.join(spec.choices)}"
        if isinstance(spec.default, bool):
            pass
        elif isinstance(spec.default, float):
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
        elif isinstance(spec.default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)]
        try:
            values[spec.name] = node.declare_parameter(spec.name, spec.default, descriptor).value
        except InvalidParameterTypeException as exc:
            want = {float: "a floating-point number (write 30.0, not 30)", int: "an integer",
                    str: "a string", bool: "true or false"}[type(spec.default)]
            raise ParameterError(f"parameter {spec.name}: expected {want} ({exc})") from None
        except InvalidParameterValueException:
            # rclpy refused an override outside the declared range; say it in our words.
            overrides = getattr(node, "_parameter_overrides", {})
            given = overrides[spec.name].value if spec.name in overrides else "?"
            raise ParameterError(f"parameter {spec.name} = {given!r} is outside "
                                 f"[{spec.low:g}, {spec.high:g}]: {spec.description}") from None
    return NodeParams(**values)


def yaml_defaults(node_name: str = "talking_face_node") -> dict:
    """The parameter file layout (``{node: {ros__parameters: {...}}}``) with every default."""
    return {node_name: {"ros__parameters": {s.name: s.default for s in SPECS}}}
