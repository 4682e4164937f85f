"""A request's input: rows in any of the accepted layouts (rows, columns, MLflow's dataframe_split and
dataframe_records), checked against the version's signature and turned into a float32 matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.conf import settings

from deployments.serving.errors import GatewayError
from deployments.serving.sessions import LoadedModel


def _table(payload: Any, names: list[str]) -> list[list[Any]]:
    """Return the request's rows as lists in signature order, from any of the accepted layouts."""
    if not isinstance(payload, dict):
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", "The body must be a JSON object such as "
                                                           '{"rows": [[5.1, 3.5, 1.4, 0.2]]}.')
    layouts = [k for k in ("rows", "instances", "inputs", "dataframe_split", "dataframe_records", "data")
               if k in payload]
    if len(layouts) != 1:
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", 'Send exactly one of "rows" (a list of rows), "inputs" '
                                                           '(columns: {"name": [values]}), "dataframe_split" or '
                                                           '"dataframe_records".')
    layout = layouts[0]
    value = payload[layout]
    if layout == "dataframe_split" or (layout == "data" and "columns" in payload):
        split = value if layout == "dataframe_split" else payload
        if not isinstance(split, dict) or not isinstance(split.get("data"), list):
            raise GatewayError(400, "INVALID_PARAMETER_VALUE", 'dataframe_split needs "columns" and "data".')
        columns = split.get("columns")
        rows = split["data"]
        if columns is not None:
            if not isinstance(columns, list) or any(isinstance(r, list) and len(r) != len(columns) for r in rows):
                raise GatewayError(400, "INVALID_PARAMETER_VALUE",
                                   "dataframe_split: every row of data needs one value per column.")
            rows = [_row_from_mapping(dict(zip(columns, r, strict=True)) if isinstance(r, list) else r, names, i)
                    for i, r in enumerate(rows)] if names else rows
        return rows
    if layout == "inputs" and isinstance(value, dict):
        if names and set(value) != set(names):
            _name_mismatch(set(value), names, "inputs")
        cols = [value[n] for n in names] if names else list(value.values())
        if not all(isinstance(c, list) for c in cols) or len({len(c) for c in cols}) > 1:
            raise GatewayError(400, "INVALID_PARAMETER_VALUE", "Every input column must be a list of the same length.")
        return [list(r) for r in zip(*cols, strict=True)] if cols else []
    if not isinstance(value, list):
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", f'"{layout}" must be a list of rows.')
    if value and isinstance(value[0], dict):
        return [_row_from_mapping(r, names, i) for i, r in enumerate(value)]
    return value


def _row_from_mapping(row: Any, names: list[str], index: int) -> list[Any]:
    if not isinstance(row, dict):
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", f"Row {index} must be an object keyed by feature name.")
    if not names:
        return list(row.values())
    if set(row) != set(names):
        _name_mismatch(set(row), names, f"row {index}")
    return [row[n] for n in names]


def _name_mismatch(got: set[str], names: list[str], where: str) -> None:
    missing, extra = [n for n in names if n not in got], sorted(got - set(names))
    parts = [f"missing {', '.join(missing)}" if missing else "", f"unexpected {', '.join(extra)}" if extra else ""]
    raise GatewayError(400, "INVALID_PARAMETER_VALUE",
                       f"Features of {where} do not match the signature ({'; '.join(p for p in parts if p)}); "
                       f"expected {', '.join(names)}.")


def parse_inputs(payload: Any, route: dict[str, Any], loaded: LoadedModel) -> np.ndarray:
    """Return the request as a float32 matrix after checking shape and types against the version's signature."""
    names = [c["name"] for c in route.get("inputs") or []]
    rows = _table(payload, names)
    if not rows:
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", "Send at least one row.")
    limit = settings.STRATUM_SERVING_MAX_ROWS
    if len(rows) > limit:
        raise GatewayError(413, "PAYLOAD_TOO_LARGE", f"{len(rows)} rows is more than the {limit} a request may carry; "
                                                     "split the batch.")
    width = len(names) or loaded.n_features
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise GatewayError(400, "INVALID_PARAMETER_VALUE", f"Row {i} must be a list of numbers.")
        if width is not None and len(row) != width:
            raise GatewayError(400, "INVALID_PARAMETER_VALUE",
                               f"Row {i} has {len(row)} feature(s); version {route['number']} takes {width}"
                               + (f" ({', '.join(names)})." if names else "."))
        for j, value in enumerate(row):
            kind = type(value)
            if kind is not float and kind is not int:
                label = names[j] if names and j < len(names) else f"column {j}"
                raise GatewayError(400, "INVALID_PARAMETER_VALUE",
                                   f"Row {i}, {label}: expected a number, got {_json_type(value)}.")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes infinity, refused just below
        x = np.asarray(rows, dtype=np.float32)
    if x.ndim != 2:
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", "Rows must all have the same number of features.")
    if not np.isfinite(x).all():
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", "Features must be finite numbers (no NaN or infinity), "
                                                           "and fit in 32-bit floats.")
    return x


def _json_type(value: Any) -> str:
    return {bool: "a boolean", str: "a string", type(None): "null", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)

