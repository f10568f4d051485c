"""ORT-format model (``.ort`` flatbuffer) -> ONNX model, so that onnxruntime can optimise it fully.

Why: an ``.ort`` file is a graph frozen at the optimisation level it was saved with; onnxruntime
loads it as it is and cannot fuse it further. moonshine-cpp's encoder was saved with its weights
as int8 tensors that a Cast/Mul/Add chain turns back into floats on every run, and with layer
norms and GELUs written out op by op. The same graph as an ONNX file, loaded at onnxruntime's
full optimisation level, folds those chains into constants and fuses the rest: on this 2-core
machine one 2.1 s Moonshine pass (1 thread) takes 53 ms instead of 70 ms, with features equal to
2e-6 (``bench/encoders.py``; the test suite bounds the difference).

No library converts this direction (onnxruntime only writes ``.ort`` files), hence this module.
It reads the flatbuffer with the schema classes that onnxruntime ships
(``onnxruntime.tools.ort_format_model``) and writes nodes, attributes, initialisers, inputs and
outputs one to one; anything it does not know (subgraphs, sparse or external tensors) raises.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def quiet_root_logger():
    """Keep onnxruntime's tools from setting up and using the root logger.

    Why: importing ``onnxruntime.tools`` calls ``logging.basicConfig``, and its quantiser logs
    advice through the root logger, which would give the node's process a stderr handler for
    good. A null handler stands in meanwhile (``basicConfig`` then does nothing) and the root
    level hides the advice.
    """
    root, stand_in = logging.getLogger(), logging.NullHandler()
    level = root.level
    root.addHandler(stand_in)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.removeHandler(stand_in)
        root.setLevel(level)


def ort_to_onnx(src: str | Path, dst: str | Path) -> Path:
    """Write the ONNX equivalent of the ORT-format model ``src`` to ``dst`` (atomically)."""
    import onnx
    from onnx import helper

    with quiet_root_logger():
        from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs import InferenceSession

    src, dst = Path(src), Path(dst)
    data = src.read_bytes()
    if not InferenceSession.InferenceSession.InferenceSessionBufferHasIdentifier(data, 0):
        raise ValueError(f"{src} is not an ORT-format model")
    model = InferenceSession.InferenceSession.GetRootAsInferenceSession(data, 0).Model()
    if model is None or model.Graph() is None:
        raise ValueError(f"{src}: ORT-format file without a model graph")
    graph = model.Graph()
    if graph.SparseInitializersLength():
        raise ValueError(f"{src}: sparse initialisers are not supported")

    nodes = []
    for i in range(graph.NodesLength()):
        n = graph.Nodes(i)
        node = helper.make_node(
            _str(n.OpType()), [_str(n.Inputs(j)) for j in range(n.InputsLength())],
            [_str(n.Outputs(j)) for j in range(n.OutputsLength())], name=_str(n.Name()), domain=_str(n.Domain()))
        node.attribute.extend(_attribute(n.Attributes(j), src) for j in range(n.AttributesLength()))
        nodes.append(node)
    args = {_str(graph.NodeArgs(j).Name()): graph.NodeArgs(j) for j in range(graph.NodeArgsLength())}
    initializers = [_tensor(graph.Initializers(j), src) for j in range(graph.InitializersLength())]
    constant = {t.name for t in initializers}
    inputs = [_value_info(args[name]) for name in (_str(graph.Inputs(j)) for j in range(graph.InputsLength()))
              if name not in constant]
    outputs = [_value_info(args[_str(graph.Outputs(j))]) for j in range(graph.OutputsLength())]
    used = {n.domain for n in nodes}
    opsets = [helper.make_opsetid(_str(model.OpsetImport(i).Domain()), model.OpsetImport(i).Version())
              for i in range(model.OpsetImportLength()) if _str(model.OpsetImport(i).Domain()) in used]
    out = helper.make_model(helper.make_graph(nodes, src.stem, inputs, outputs, initializers),
                            opset_imports=opsets, ir_version=model.IrVersion(), producer_name="talking_face_ros")
    onnx.checker.check_model(out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name, suffix=".tmp")
    os.close(fd)
    try:
        onnx.save(out, tmp)
        os.replace(tmp, dst)  # concurrent converters (feature-cache workers) each write a whole file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dst


def _str(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _tensor(t, src: Path):
    from onnx import TensorProto

    out = TensorProto()
    out.name = _str(t.Name())
    out.data_type = t.DataType()  # the ORT schema numbers data types as ONNX does
    out.dims.extend(t.Dims(j) for j in range(t.DimsLength()))
    if t.StringDataLength():
        out.string_data.extend(t.StringData(j) for j in range(t.StringDataLength()))
    elif t.RawDataLength():
        out.raw_data = t.RawDataAsNumpy().tobytes()
    elif t.ExternalDataOffset() >= 0:
        raise ValueError(f"{src}: tensor {out.name!r} keeps its data outside the file; not supported")
    return out


def _attribute(a, src: Path):
    import onnx

    out = onnx.AttributeProto()
    out.name, out.type = _str(a.Name()), a.Type()  # attribute types are numbered as in ONNX too
    kind = out.type
    if kind == onnx.AttributeProto.FLOAT:
        out.f = a.F()
    elif kind == onnx.AttributeProto.INT:
        out.i = a.I()
    elif kind == onnx.AttributeProto.STRING:
        out.s = a.S()
    elif kind == onnx.AttributeProto.TENSOR:
        out.t.CopyFrom(_tensor(a.T(), src))
    elif kind == onnx.AttributeProto.FLOATS:
        out.floats.extend(a.Floats(j) for j in range(a.FloatsLength()))
    elif kind == onnx.AttributeProto.INTS:
        out.ints.extend(a.Ints(j) for j in range(a.IntsLength()))
    elif kind == onnx.AttributeProto.STRINGS:
        out.strings.extend(a.Strings(j) for j in range(a.StringsLength()))
    elif kind == onnx.AttributeProto.TENSORS:
        out.tensors.extend(_tensor(a.Tensors(j), src) for j in range(a.TensorsLength()))
    else:
        raise ValueError(f"{src}: attribute {out.name!r} of type {kind} (subgraphs, sparse tensors) is not supported")
    return out


def _value_info(arg):
    from onnx import TypeProto, helper
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs.DimensionValueType import DimensionValueType
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs.TensorTypeAndShape import TensorTypeAndShape
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs.TypeInfoValue import TypeInfoValue

    name, info = _str(arg.Name()), arg.Type()
    if info is None or info.ValueType() != TypeInfoValue.tensor_type:
        return helper.make_value_info(name, TypeProto())
    table = info.Value()
    tensor_type = TensorTypeAndShape()
    tensor_type.Init(table.Bytes, table.Pos)
    shape = None
    if tensor_type.Shape() is not None:
        shape = []
        for j in range(tensor_type.Shape().DimLength()):
            value = tensor_type.Shape().Dim(j).Value()
            if value is None:
                shape.append(None)
            elif value.DimType() == DimensionValueType.VALUE:
                shape.append(value.DimValue())
            else:
                shape.append(_str(value.DimParam()) or None)
    return helper.make_tensor_value_info(name, tensor_type.ElemType(), shape)
