"""Static pickle scanning: walk the opcodes symbolically, collect every global a load would import, never unpickle."""

from __future__ import annotations

import importlib.util
import io
import pickletools
import re
import time
import zipfile
from dataclasses import dataclass, field
from typing import IO, Any

SCANNER = "stratum-opcode-walk/1"

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
            for op, arg, _pos in pickletools.genops(self.fh):
                started = True
                if op.name == "STOP":
                    return True
                if not self._apply_data(op.name, arg, stack, metastack, memo):
                    self._apply_object(op.name, arg, stack, metastack)
        except (IndexError, KeyError, TypeError) as exc:
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
            stack.append(arg if not isinstance(arg, (bytes, bytearray)) or len(arg) < 256 else b"")
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


def _looks_pickled(head: bytes) -> bool:
    """Whether a zip member or a file of another format starts with a pickle opcode (then it is parsed)."""
    return bool(head) and head[:1].decode("latin-1") in pickletools.code2op


def _importable(found: list[str]) -> list[str]:
    """The globals whose top-level module exists here (found without importing anything)."""
    out = []
    for label in found:
        top = label.split(".", 1)[0]
        if top.startswith("<") or importlib.util.find_spec(top) is not None:
            out.append(label)
    return out


def _verdict(found: list[str], report: ScanReport) -> ScanReport:
    report.globals = sorted(set(found) | set(report.globals))
    bad = [g for g in report.globals if not global_is_safe(*g.rsplit(".", 1))]
    report.offending = sorted(set(report.offending) | set(bad))
    if report.verdict != "error":
        report.verdict = "unsafe" if report.offending else "safe"
    return report


def scan_file(fh: IO[bytes], *, fmt: str, max_bytes: int, timeout: float) -> ScanReport:
    """Scan one artifact's bytes (a pickle, a joblib file, a zip of them, or any file that parses as a pickle)."""
    started = time.monotonic()
    budget = _Budget(max_bytes, started + timeout)
    report = ScanReport(verdict="not_pickle")
    try:
        if fmt == "compressed":
            report.verdict, report.detail = "error", "compressed file: the scanner cannot read it; quarantined"
        elif fmt == "zip":
            _scan_zip(fh, budget, report)
            if report.verdict == "not_pickle" and not report.members:
                report.detail = "zip archive without pickled members"
            else:
                _verdict([], report)
        elif fmt in PICKLE_FORMATS:
            _verdict(scan_pickle_stream(fh, budget), report)
        else:
            head = fh.read(1)
            fh.seek(0)
            if _looks_pickled(head):
                found: list[str] = []
                try:
                    scan_pickle_stream(fh, budget, found)
                except ScanLimit:
                    raise
                except ScanError as exc:
                    # A load would import these before it stumbled: never call that clean. Text that merely
                    # looks like a GLOBAL opcode naming no module that exists here could never import anything.
                    if _importable(found):
                        report.verdict, report.detail = "error", f"partly parses as a pickle ({exc}); quarantined"
                        _verdict(found, report)
                else:
                    report.detail = f"{fmt} file that parses as a pickle"
                    _verdict(found, report)
    except ScanError as exc:
        report.verdict, report.detail = "error", f"{exc}; quarantined"
    except Exception as exc:  # a scan must always end in a verdict; an unexpected failure quarantines
        report.verdict, report.detail = "error", f"scanner failed ({exc.__class__.__name__}: {exc}); quarantined"
    report.duration_ms = int((time.monotonic() - started) * 1000)
    return report


def _scan_zip(fh: IO[bytes], budget: _Budget, report: ScanReport) -> None:
    """Scan every member of a zip (PyTorch-style archives, zipped MLflow dirs) that parses as a pickle."""
    try:
        archive = zipfile.ZipFile(fh)
    except zipfile.BadZipFile as exc:
        raise ScanError(f"unreadable zip: {exc}") from exc
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            with archive.open(info) as member:
                head = member.read(1)
            if not _looks_pickled(head):
                continue
            found: list[str] = []
            with archive.open(info) as member:
                try:
                    scan_pickle_stream(member, budget, found)
                except ScanLimit:
                    raise
                except ScanError as exc:
                    if head[0] == 0x80 or found:  # a pickle that does not parse to the end: quarantine
                        report.globals = sorted(set(report.globals) | set(found))
                        raise ScanError(f"zip member {info.filename}: {exc}") from exc
                    continue
            report.members.append(info.filename)
            report.globals = sorted(set(report.globals) | set(found))
            if report.verdict == "not_pickle":
                report.verdict = "safe"
