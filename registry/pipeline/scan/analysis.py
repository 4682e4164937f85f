"""Static pickle scanning: walk the opcodes symbolically, collect every global a load would import, never unpickle."""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import io
import itertools
import lzma
import pickletools
import re
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO, Any

# Bump whenever a rule changes (allowlist, formats, limits): every stored scan made by another version is redone in
# the background (registry/pipeline/scan/rescan.py) and files that are now unsafe are quarantined.
SCANNER = "stratum-scan/2"

# Globals a benign scikit-learn / numpy / scipy / stdlib-data pickle imports. Exact names, no wildcards over
# modules that also hold callables with side effects (a whole-module wildcard on numpy would admit numpy.load).
SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("builtins", "slice"), ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
    ("builtins", "bytearray"), ("builtins", "range"), ("builtins", "object"), ("builtins", "dict"),
    ("builtins", "list"), ("builtins", "tuple"), ("builtins", "int"), ("builtins", "float"), ("builtins", "str"),
    ("builtins", "bytes"), ("builtins", "bool"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"), ("__builtin__", "slice"), ("__builtin__", "object"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("copyreg", "__newobj__"),
    ("collections", "OrderedDict"), ("collections", "defaultdict"), ("collections", "deque"),
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "time"), ("datetime", "timedelta"),
    ("datetime", "timezone"), ("decimal", "Decimal"), ("fractions", "Fraction"), ("uuid", "UUID"),
    ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy", "float64"), ("numpy", "float32"), ("numpy", "int64"),
    ("numpy", "int32"), ("numpy", "bool_"), ("numpy", "uint8"), ("numpy", "str_"), ("numpy", "bytes_"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__randomstate_ctor"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"), ("numpy.random.mtrand", "RandomState"),
    ("numpy.random._mt19937", "MT19937"), ("numpy.random._pcg64", "PCG64"),
    ("numpy.ma.core", "_mareconstruct"), ("numpy.ma.core", "MaskedArray"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("scipy.sparse._csr", "csr_matrix"), ("scipy.sparse._csc", "csc_matrix"), ("scipy.sparse._coo", "coo_matrix"),
    ("scipy.sparse._csr", "csr_array"), ("scipy.sparse._csc", "csc_array"),
    ("sklearn.tree._tree", "Tree"), ("sklearn._loss.link", "IdentityLink"), ("sklearn._loss.link", "LogitLink"),
    ("sklearn._loss.link", "MultinomialLogit"), ("sklearn._loss.link", "LogLink"),
    ("sklearn._loss.link", "Interval"), ("sklearn._loss._loss", "CyHalfBinomialLoss"),
    ("sklearn._loss._loss", "CyHalfSquaredError"), ("sklearn._loss._loss", "CyHalfMultinomialLoss"),
    ("sklearn._loss.loss", "HalfBinomialLoss"), ("sklearn._loss.loss", "HalfSquaredError"),
    ("sklearn._loss.loss", "HalfMultinomialLoss"), ("sklearn.neighbors._kd_tree", "KDTree"),
    ("sklearn.neighbors._ball_tree", "BallTree"), ("sklearn.neighbors._kd_tree", "newObj"),
    ("sklearn.neighbors._ball_tree", "newObj"), ("sklearn.utils._bunch", "Bunch"),
    ("sklearn.metrics._dist_metrics", "newObj"),
    # Protocol 2 pickles rebuild bytes as _codecs.encode(text, "latin1"): a pure function of its arguments.
    ("_codecs", "encode"), ("__builtin__", "bytes"), ("__builtin__", "bytearray"),
    ("numpy.random.bit_generator", "SeedSequence"), ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    # PyTorch state dicts (data.pkl in a torch.save zip): what torch.load(weights_only=True) itself admits.
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"), ("torch", "FloatStorage"),
    ("torch", "DoubleStorage"), ("torch", "HalfStorage"), ("torch", "LongStorage"), ("torch", "IntStorage"),
    ("torch", "ByteStorage"), ("torch", "BoolStorage"), ("torch", "BFloat16Storage"), ("torch", "float32"),
    ("torch", "float16"), ("torch", "bfloat16"), ("torch", "int64"), ("torch.storage", "UntypedStorage"),
    ("torch", "Size"),
    # A persistent id imports nothing: the loader's own persistent_load maps it (torch: to a storage record in the
    # same zip); plain pickle.load refuses it.
    ("<persistent_load>", "persistent_id"),
    # XGBoost's scikit-learn wrappers: the booster pickles as its raw model bytes (a bytearray) and parameters.
    ("xgboost.sklearn", "XGBClassifier"), ("xgboost.sklearn", "XGBRegressor"), ("xgboost.sklearn", "XGBRanker"),
    ("xgboost.sklearn", "XGBRFClassifier"), ("xgboost.sklearn", "XGBRFRegressor"), ("xgboost.core", "Booster"),
})

# Estimator classes: every class scikit-learn exports from these public modules is data plus fit/predict
# methods; unpickling one calls only object.__new__ and __setstate__. Admitted by module, name must be a class name.
SAFE_MODULE_PREFIXES: tuple[str, ...] = (
    "sklearn.linear_model.", "sklearn.ensemble.", "sklearn.tree.", "sklearn.svm.", "sklearn.neighbors.",
    "sklearn.naive_bayes.", "sklearn.preprocessing.", "sklearn.pipeline", "sklearn.compose.",
    "sklearn.decomposition.", "sklearn.cluster.", "sklearn.impute.", "sklearn.feature_extraction.",
    "sklearn.feature_selection.", "sklearn.discriminant_analysis", "sklearn.dummy", "sklearn.calibration",
    "sklearn.multiclass", "sklearn.kernel_approximation", "sklearn.neural_network.", "sklearn.isotonic",
    "sklearn.gaussian_process.", "sklearn.mixture.", "sklearn.model_selection.", "sklearn.metrics._dist_metrics",
)
# Names inside those modules that are functions, not estimator classes (callable on load).
_UNSAFE_NAMES_IN_SAFE_MODULES = {"load", "loads", "eval", "exec", "system", "import_module", "open", "Popen"}

PICKLE_FORMATS = {"pickle", "joblib"}


def global_is_safe(module: str, name: str) -> bool:
    """Whether a load may import `module.name`: exact allowlist, or a capitalised class in an estimator module."""
    if (module, name) in SAFE_GLOBALS:
        return True
    if not module.startswith(SAFE_MODULE_PREFIXES) or "." in name or name in _UNSAFE_NAMES_IN_SAFE_MODULES:
        return False
    return name.lstrip("_")[:1].isupper() and name.isidentifier()


class ScanError(Exception):
    """The scanner could not read the file to the end; the file is quarantined."""


class ScanLimit(ScanError):
    """The file passed the size or time budget of a scan."""


@dataclass
class ScanReport:
    """What one scan found: verdict, the globals (module.name) a load would import, and why."""

    verdict: str  # safe | unsafe | error | not_pickle
    globals: list[str] = field(default_factory=list)
    offending: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    detail: str = ""
    scanner: str = SCANNER
    duration_ms: int = 0

    @property
    def quarantined(self) -> bool:
        """Anything but a clean verdict (or a file that is no pickle at all) is quarantined."""
        return self.verdict not in {"safe", "not_pickle"}


# --------------------------------------------------------------------------------------------- symbolic VM


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


@dataclass
class _Obj:
    callable: Any
    args: Any = None
    state: Any = None


class _Budget:
    """A byte and wall-clock budget shared by every stream a scan reads."""

    def __init__(self, max_bytes: int, deadline: float) -> None:
        self.max_bytes, self.deadline, self.read = max_bytes, deadline, 0

    def charge(self, n: int) -> None:
        self.read += n
        if self.read > self.max_bytes:
            raise ScanLimit(f"file exceeds the scan limit of {self.max_bytes} bytes")
        if time.monotonic() > self.deadline:
            raise ScanLimit("scan timed out")


class _Metered(io.RawIOBase):
    """A read-only stream that charges every byte read to a budget."""

    def __init__(self, fh: IO[bytes], budget: _Budget) -> None:
        self.fh, self.budget = fh, budget

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self.budget.max_bytes - self.budget.read:
            # A crafted length prefix must not make us allocate it: anything past the budget is oversize anyway.
            n = self.budget.max_bytes - self.budget.read + 1
        data = self.fh.read(n)
        self.budget.charge(len(data))
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self.fh.readline(65536 if limit < 0 else limit)
        self.budget.charge(len(data))
        return data

    def tell(self) -> int:
        return self.fh.tell()


_DOTTED = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")

_LITERAL_OPS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING", "SHORT_BINSTRING",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
    "FLOAT", "BINFLOAT", "BYTEARRAY8",
}


class _Big:
    """A literal too large to hold in memory while scanning: skipped on disk, only its length kept."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __repr__(self) -> str:
        return f"<{self.length} bytes>"


# Length-prefixed arguments: (bytes in the length, signed length). Past BIG_LITERAL bytes they are skipped, not read.
_LENGTH_PREFIXED = {"bytes4": (4, False), "bytes8": (8, False), "bytearray8": (8, False), "string4": (4, True),
                    "unicodestring4": (4, False), "unicodestring8": (8, False), "long4": (4, True)}
BIG_LITERAL = 1 << 20


def _skip_bytes(fh: IO[bytes], n: int, what: str) -> None:
    while n > 0:
        chunk = fh.read(min(n, 1 << 20))
        if not chunk:
            raise ValueError(f"{what} truncated")
        n -= len(chunk)


def _opcodes(fh: IO[bytes]) -> Any:
    """Yield (opcode, argument, None) like pickletools.genops, without ever holding a huge literal in memory."""
    while True:
        code = fh.read(1)
        if not code:
            raise ValueError("pickle exhausted before seeing STOP")
        op = pickletools.code2op.get(code.decode("latin-1"))
        if op is None:
            raise ValueError(f"opcode {code!r} unknown")
        desc = op.arg
        if desc is None:
            arg = None
        elif desc.name in _LENGTH_PREFIXED:
            width, signed = _LENGTH_PREFIXED[desc.name]
            raw = fh.read(width)
            length = int.from_bytes(raw, "little", signed=signed)
            if len(raw) < width or length < 0:
                raise ValueError(f"{op.name} with a truncated or negative length")
            if length > BIG_LITERAL:
                _skip_bytes(fh, length, f"{op.name} literal of {length} bytes")
                arg = _Big(length)
            else:
                data = fh.read(length)
                if len(data) < length:
                    raise ValueError(f"{op.name} literal truncated")
                if desc.name == "long4":
                    arg = int.from_bytes(data, "little", signed=True)
                elif desc.name.startswith("unicode"):
                    arg = data.decode("utf-8", "surrogatepass")
                elif desc.name == "string4":
                    arg = data.decode("latin-1")
                else:
                    arg = bytearray(data) if desc.name == "bytearray8" else data
        else:
            arg = desc.reader(fh)
        yield op, arg, None
        if op.name == "STOP":
            return


class _Walker:
    """Run a pickle's opcodes over symbolic values, recording every import and resolving STACK_GLOBAL."""

    def __init__(self, fh: IO[bytes], found: list[str]) -> None:
        self.fh, self.found = fh, found

    def _record(self, module: Any, name: Any) -> _Global:
        if not isinstance(module, str) or not isinstance(name, str):
            raise ScanError("STACK_GLOBAL with a module or name that is not a plain string")
        if not (_DOTTED.fullmatch(module) or module.startswith("<")) or not _DOTTED.fullmatch(name):
            raise ScanError(f"global {module!r}.{name!r} is not an importable name")
        label = f"{module}.{name}"
        if label not in self.found:
            self.found.append(label)
        return _Global(module, name)

    def _pop_mark(self, stack: list[Any], metastack: list[list[Any]]) -> list[Any]:
        if not metastack:
            raise ScanError("mark expected but none on the stack")
        items = stack[:]
        stack[:] = metastack.pop()
        return items

    def walk(self) -> bool:
        """Walk one pickle to its STOP; return False when the stream is already at its end."""
        stack: list[Any] = []
        metastack: list[list[Any]] = []
        memo: dict[int, Any] = {}
        started = False
        try:
            for op, arg, _pos in _opcodes(self.fh):
                started = True
                if op.name == "STOP":
                    return True
                if not self._apply_data(op.name, arg, stack, metastack, memo):
                    self._apply_object(op.name, arg, stack, metastack)
        except (IndexError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ScanError(f"malformed pickle: {exc.__class__.__name__}") from exc
        except ValueError as exc:
            if not started and "pickle exhausted before seeing STOP" in str(exc):
                return False
            raise ScanError(f"not a readable pickle: {exc}") from exc
        raise ScanError("pickle ended without STOP")

    def _apply_data(self, name: str, arg: Any, stack: list[Any], metastack: list[list[Any]],
                    memo: dict[int, Any]) -> bool:
        """Apply an opcode that builds plain data (literals, containers, the memo); False when it is not one."""
        if name in _LITERAL_OPS:
            stack.append(arg if not isinstance(arg, (bytes, bytearray, str)) or len(arg) < 256 else _Big(len(arg)))
        elif name in {"NONE", "NEWTRUE", "NEWFALSE"}:
            stack.append({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[name])
        elif name in {"PROTO", "FRAME"}:
            pass  # framing only: nothing to build
        elif name == "MARK":
            metastack.append(stack[:])
            stack.clear()
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            self._pop_mark(stack, metastack)
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in {"EMPTY_LIST", "EMPTY_DICT", "EMPTY_TUPLE", "EMPTY_SET"}:
            stack.append({"EMPTY_LIST": [], "EMPTY_DICT": {}, "EMPTY_TUPLE": (), "EMPTY_SET": set()}[name])
        elif name in {"TUPLE1", "TUPLE2", "TUPLE3"}:
            n = int(name[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name in {"TUPLE", "LIST", "FROZENSET"}:
            items = self._pop_mark(stack, metastack)
            stack.append(list(items) if name == "LIST" else tuple(items))
        elif name == "DICT":
            items = self._pop_mark(stack, metastack)
            stack.append(self._dict(items))
        elif name == "APPEND":
            value = stack.pop()
            if isinstance(stack[-1], list):
                stack[-1].append(value)
        elif name in {"APPENDS", "ADDITEMS"}:
            items = self._pop_mark(stack, metastack)
            if isinstance(stack[-1], list):
                stack[-1].extend(items)
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            self._setitems(stack[-1], [key, value])
        elif name == "SETITEMS":
            items = self._pop_mark(stack, metastack)
            self._setitems(stack[-1], items)
        elif name in {"PUT", "BINPUT", "LONG_BINPUT"}:
            memo[int(arg)] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in {"GET", "BINGET", "LONG_BINGET"}:
            if int(arg) not in memo:
                raise ScanError(f"memo key {arg} read before it was written")
            stack.append(memo[int(arg)])
        else:
            return False
        return True

    def _apply_object(self, name: str, arg: Any, stack: list[Any], metastack: list[list[Any]]) -> None:
        """Apply an opcode that imports a global or builds an object, recording every global a load would import."""
        if name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            stack.append(self._record(module, attr))
        elif name == "STACK_GLOBAL":
            attr, module = stack.pop(), stack.pop()
            stack.append(self._record(module, attr))
        elif name == "INST":
            module, _, attr = str(arg).partition(" ")
            args = self._pop_mark(stack, metastack)
            stack.append(_Obj(self._record(module, attr), tuple(args)))
        elif name == "OBJ":
            items = self._pop_mark(stack, metastack)
            if not items:
                raise ScanError("OBJ without a class")
            stack.append(_Obj(items[0], tuple(items[1:])))
        elif name == "REDUCE":
            args, func = stack.pop(), stack.pop()
            stack.append(_Obj(func, args))
        elif name == "NEWOBJ":
            args, cls = stack.pop(), stack.pop()
            stack.append(_Obj(cls, args))
        elif name == "NEWOBJ_EX":
            _kwargs, args, cls = stack.pop(), stack.pop(), stack.pop()
            stack.append(_Obj(cls, args))
        elif name == "BUILD":
            state = stack.pop()
            target = stack[-1]
            if isinstance(target, _Obj):
                target.state = state
                if target.callable == _Global("joblib.numpy_pickle", "NumpyArrayWrapper"):
                    self._skip_joblib_array(state)
        elif name in {"PERSID", "BINPERSID"}:
            if name == "BINPERSID":
                stack.pop()
            self._record("<persistent_load>", "persistent_id")
            stack.append(_Obj(None))
        elif name in {"EXT1", "EXT2", "EXT4"}:
            self._record("<copyreg extension>", str(arg))
            stack.append(_Obj(None))
        elif name in {"NEXT_BUFFER", "READONLY_BUFFER"}:
            if name == "NEXT_BUFFER":
                stack.append(_Obj(None))
        else:
            raise ScanError(f"unsupported opcode {name}")

    @staticmethod
    def _dict(items: list[Any]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        _Walker._setitems(out, items)
        return out

    @staticmethod
    def _setitems(target: Any, items: list[Any]) -> None:
        if not isinstance(target, dict):
            return
        for key, value in zip(items[::2], items[1::2], strict=False):
            try:
                target[key] = value
            except TypeError:
                target[repr(key)] = value

    def _skip_joblib_array(self, state: Any) -> None:
        """Step over the raw bytes joblib writes after an array wrapper, or walk its nested object pickle."""
        import numpy as np

        if not isinstance(state, dict) or not isinstance(state.get("dtype"), _Obj):
            raise ScanError("joblib array wrapper without a readable dtype")
        dtype_obj = state["dtype"]
        descr = dtype_obj.args[0] if isinstance(dtype_obj.args, tuple) and dtype_obj.args else None
        if not isinstance(descr, str):
            raise ScanError("joblib array with an unsupported dtype")
        try:
            dtype = np.dtype(descr)  # a dtype string; nothing is unpickled
        except TypeError as exc:
            raise ScanError(f"joblib array with dtype {descr!r}") from exc
        if dtype.hasobject:
            if not self.walk():  # object arrays are a nested pickle stream
                raise ScanError("joblib object array without its nested pickle")
            return
        shape = state.get("shape")
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ScanError("joblib array wrapper with an unreadable shape")
        count = 1
        for d in shape:
            count *= d
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.fh.read(1)
            if len(pad) != 1:
                raise ScanError("joblib array padding truncated")
            self._skip(pad[0])
        self._skip(count * dtype.itemsize)

    def _skip(self, n: int) -> None:
        while n > 0:
            chunk = self.fh.read(min(n, 1024 * 1024))
            if not chunk:
                raise ScanError("joblib array data truncated")
            n -= len(chunk)


def scan_pickle_stream(fh: IO[bytes], budget: _Budget, found: list[str] | None = None) -> list[str]:
    """Walk every pickle concatenated in `fh` (a benign one may hide behind a malicious one); return its globals."""
    found = [] if found is None else found
    walker = _Walker(_Metered(fh, budget), found)
    if not walker.walk():
        raise ScanError("empty file")
    while walker.walk():
        pass
    return found


def _importable(found: list[str]) -> list[str]:
    """The globals whose top-level module exists here (found without importing anything)."""
    out = []
    for label in found:
        top = label.split(".", 1)[0]
        if not top.startswith("<") and importlib.util.find_spec(top) is not None:
            out.append(label)
    return out


def _verdict(report: ScanReport) -> ScanReport:
    """Name every global outside the allowlist; any offence makes the file unsafe (a scan error stays an error)."""
    bad = [g for g in report.globals if not global_is_safe(*g.rsplit(".", 1))]
    report.offending = sorted(set(report.offending) | set(bad))
    if report.verdict != "error" and report.offending:
        report.verdict = "unsafe"
    return report


# Nesting deeper than this (a pickle in a zip in a gzip in a zip ...) is refused rather than followed.
MAX_DEPTH = 4
MAX_ZIP_MEMBERS = 100_000
# A zip member that claims to expand more than this many times over (and past ZIP_BOMB_MIN_BYTES) is refused unread.
ZIP_BOMB_RATIO = 200
ZIP_BOMB_MIN_BYTES = 64 * 1024**2
# Formats that are data, never code: recognised by content and not parsed as pickles.
_INERT_FORMATS = {"image", "csv", "parquet", "safetensors", "json", "mlmodel"}


class _Prefixed(io.RawIOBase):
    """A stream that serves `head` (already read, to sniff the format) and then the rest of `fh`."""

    def __init__(self, head: bytes, fh: IO[bytes]) -> None:
        self.head, self.fh = head, fh

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.head:
            n = min(len(view), len(self.head))
            view[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.fh.read(len(view))
        view[: len(data)] = data
        return len(data)


class _ZlibReader(io.RawIOBase):
    """A raw zlib stream (joblib's default compression) decompressed as it is read, never all at once."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.inflater, self.pending = fh, zlib.decompressobj(), b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self.pending and not self.inflater.eof:
            chunk = self.inflater.unconsumed_tail or self.fh.read(64 * 1024)
            if not chunk:
                raise ScanError("compressed stream truncated")
            self.pending = self.inflater.decompress(chunk, 1 << 20)
        n = min(len(view), len(self.pending))
        view[:n], self.pending = self.pending[:n], self.pending[n:]
        return n


def _decompressor(head: bytes, fh: IO[bytes]) -> IO[bytes]:
    """Open the decompressed view of a compressed stream (gzip, bz2, xz, lzma, zlib); refuse what it cannot read."""
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=fh, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(fh, mode="rb")
    if head.startswith(b"\xfd7zXZ\x00") or head.startswith(b"\x5d\x00\x00"):
        return lzma.LZMAFile(fh, mode="rb")
    if len(head) > 1 and head[0] == 0x78:
        return io.BufferedReader(_ZlibReader(fh), 1 << 16)
    if head.startswith(b"\x04\x22\x4d\x18"):
        raise ScanError("lz4-compressed file: the scanner does not read lz4")
    raise ScanError("compressed file in a format the scanner does not read")


class _Scan:
    """One scan: a budget shared by every stream it opens, and the report it fills in."""

    def __init__(self, budget: _Budget, report: ScanReport) -> None:
        self.budget, self.report = budget, report

    def any(self, fh: IO[bytes], fmt: str, where: str, depth: int) -> None:
        """Scan a stream of detected format `fmt`; `where` names it inside its containers ('' for the file)."""
        if depth > MAX_DEPTH:
            raise ScanError(f"{where}: nested more than {MAX_DEPTH} containers deep; refused")
        if fmt in PICKLE_FORMATS:
            self.pickle(fh, where)
        elif fmt == "zip":
            self.zip(fh, where, depth)
        elif fmt == "compressed":
            self.compressed(fh, where, depth)
        elif fmt == "npy":
            self.npy(fh, where)
        elif fmt == "onnx":
            self.onnx(fh, where)
        elif fmt not in _INERT_FORMATS:
            self.maybe_pickle(fh, fmt, where)

    def pickle(self, fh: IO[bytes], where: str) -> None:
        found: list[str] = []
        try:
            scan_pickle_stream(fh, self.budget, found)
        finally:  # what a load would import before it stumbled counts too
            self._record(found, where)

    def _record(self, found: list[str], where: str) -> None:
        self.report.globals = sorted(set(self.report.globals) | set(found))
        if where and where not in self.report.members:
            self.report.members.append(where)
        if self.report.verdict == "not_pickle":
            self.report.verdict = "safe"

    def maybe_pickle(self, fh: IO[bytes], fmt: str, where: str) -> None:
        """Text or unknown binary: a pickle (protocol 0 INST starts with '(', a sniffer calls it text) is scanned;
        bytes that merely start like an opcode and import no module that exists here are left alone."""
        head = fh.read(1)
        if not head or head.decode("latin-1") not in pickletools.code2op:
            return
        found: list[str] = []
        try:
            scan_pickle_stream(_Prefixed(head, fh), self.budget, found)
        except ScanLimit:
            raise
        except ScanError as exc:
            if _importable(found):  # a load would import these before it stumbled: never call that clean
                self._record(found, where)
                raise ScanError(f"{where or fmt + ' file'} partly parses as a pickle ({exc})") from exc
            return
        self._record(found, where)
        if not where:
            self.report.detail = f"{fmt} file that parses as a pickle"

    def compressed(self, fh: IO[bytes], where: str, depth: int) -> None:
        head = fh.read(16)
        try:
            with _decompressor(head, _Prefixed(head, fh)) as inner:
                inner_head = _Metered(inner, self.budget).read(SNIFF)
                from registry.artifacts.formats import detect_format

                inner_fmt = detect_format(inner_head)
                self.any(io.BufferedReader(_Prefixed(inner_head, inner), 1 << 16), inner_fmt,
                         f"{where or '(file)'}!decompressed", depth + 1)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            raise ScanError(f"{where or 'file'}: unreadable compressed data ({exc})") from exc

    def npy(self, fh: IO[bytes], where: str) -> None:
        """A .npy array: plain numbers are data; an object array is a pickle after the header, scanned as one."""
        import numpy as np

        try:
            major, _minor = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            _shape, _fortran, dtype = reader(fh)  # a literal_eval of the header dict; nothing is unpickled
        except ValueError as exc:
            raise ScanError(f"{where or 'file'}: unreadable .npy header ({exc})") from exc
        if dtype.hasobject:
            self.pickle(fh, where or "(object array)")

    def onnx(self, fh: IO[bytes], where: str) -> None:
        """An ONNX model whose tensors point at external data would make a loader read files outside the store."""
        from registry.pipeline.scan.onnx_refs import external_data_refs

        data = _Metered(fh, self.budget).read(self.budget.max_bytes)
        try:
            refs = external_data_refs(data)
        except ValueError:
            return  # not an ONNX model after all (the sniffer guesses): no loader will take it as one
        for tensor, location in refs:
            self.report.offending.append(f"onnx external data {location!r} (tensor {tensor!r}"
                                         + (f" in {where})" if where else ")"))
        if refs:
            self.report.detail = ("ONNX model with tensors stored outside the file: a load would read "
                                  f"{', '.join(sorted({loc for _, loc in refs}))[:300]}")

    def zip(self, fh: IO[bytes], where: str, depth: int) -> None:
        """Scan every member of a zip (PyTorch archives, zipped MLflow dirs, zips of zips) by its own format."""
        from registry.artifacts.formats import detect_format

        label = where or "zip"
        try:
            archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            raise ScanError(f"{label}: unreadable zip ({exc})") from exc
        with archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            _check_zip_bomb(infos, label)
            for info in infos:
                name = f"{where}!{info.filename}" if where else info.filename
                try:
                    with archive.open(info) as member:
                        head = _Metered(member, self.budget).read(SNIFF)
                        fmt = detect_format(head)
                        if fmt in _INERT_FORMATS or (fmt in {"text", "binary"} and not head):
                            continue
                        if fmt == "zip":  # zipfile seeks: the nested archive is read through its member stream
                            with archive.open(info) as nested:
                                self.zip(nested, name, depth + 1)
                            continue
                        self.any(io.BufferedReader(_Prefixed(head, member), 1 << 16), fmt, name, depth + 1)
                except ScanError as exc:
                    if isinstance(exc, ScanLimit) or str(exc).startswith(name):
                        raise
                    raise ScanError(f"{name}: {exc}") from exc
                except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
                    raise ScanError(f"{name}: unreadable zip member ({exc})") from exc


def _check_zip_bomb(infos: list[zipfile.ZipInfo], label: str) -> None:
    """Refuse archives that claim absurd expansion or whose entries overlap (the classic zip-bomb constructions)."""
    if len(infos) > MAX_ZIP_MEMBERS:
        raise ScanError(f"{label}: {len(infos)} members, more than {MAX_ZIP_MEMBERS}; refused")
    for info in infos:
        if info.file_size > ZIP_BOMB_MIN_BYTES and info.file_size > ZIP_BOMB_RATIO * max(info.compress_size, 1):
            raise ScanError(f"{label}: member {info.filename} claims to expand {info.compress_size} bytes to "
                            f"{info.file_size} (a zip bomb); refused")
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for first, second in itertools.pairwise(ordered):
        if first.header_offset + first.compress_size > second.header_offset:
            raise ScanError(f"{label}: members {first.filename} and {second.filename} overlap (a zip bomb); refused")


SNIFF = 64 * 1024


def scan_file(fh: IO[bytes], *, fmt: str, max_bytes: int, timeout: float) -> ScanReport:
    """Scan one artifact's bytes by its detected format: pickle-family content (plain, joblib, compressed, inside
    zips, object .npy) through the opcode walk, ONNX for external-data references; data formats are left alone."""
    started = time.monotonic()
    report = ScanReport(verdict="not_pickle")
    try:
        _Scan(_Budget(max_bytes, started + timeout), report).any(fh, fmt, "", 0)
        if report.verdict == "not_pickle" and fmt == "zip" and not report.detail:
            report.detail = "zip archive without pickled members"
    except ScanError as exc:
        report.verdict, report.detail = "error", f"{exc}; quarantined"
    except Exception as exc:  # a scan must always end in a verdict; an unexpected failure quarantines
        report.verdict, report.detail = "error", f"scanner failed ({exc.__class__.__name__}: {exc}); quarantined"
    _verdict(report)
    report.duration_ms = int((time.monotonic() - started) * 1000)
    return report
