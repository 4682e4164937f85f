"""Find the external-data references of an ONNX model: tensors whose bytes a loader would read from other files."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _tensors_of_graph(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _tensors_of_node(node)


def _tensors_of_node(node: Any) -> Iterator[Any]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield attr.sparse_tensor.values
            yield attr.sparse_tensor.indices
        if attr.HasField("g"):
            yield from _tensors_of_graph(attr.g)
        for graph in attr.graphs:
            yield from _tensors_of_graph(graph)


def external_data_refs(data: bytes) -> list[tuple[str, str]]:
    """Return (tensor name, location) for every tensor of the serialized model stored outside it.

    Parses the protobuf only (onnx.load_model_from_string never follows external data); raises ValueError when
    the bytes are not an ONNX model.
    """
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"not an ONNX model: {exc}") from exc
    tensors = list(_tensors_of_graph(model.graph))
    for function in model.functions:
        for node in function.node:
            tensors.extend(_tensors_of_node(node))
    refs = []
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            refs.append((tensor.name, location))
    return refs
