"""Helpers every benchmark shares: starting a Stratum server from a source tree and waiting for it, stopping
servers, free ports, latencies and percentiles, and how busy the machine was while a figure was taken.

Standard library only (the benchmarks run from the project's venv, but never import Django themselves).
"""

from __future__ import annotations

import http.client
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]


def say(text: str = "") -> None:
    """Print a line at once (the benchmarks run for minutes; output must not wait in a buffer)."""
    print(text, flush=True)


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile of `samples` (p in 0..100); NaN when empty."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@dataclass
class Latencies:
    """Request latencies in seconds, failures by HTTP status (0: no answer at all), and the wall time they span."""

    samples: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    wall: float = 0.0

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def per_second(self) -> float:
        return self.count / self.wall if self.wall else math.nan

    def ms(self, p: float) -> float:
        """The p-th percentile (0..100) in milliseconds."""
        return percentile(self.samples, p) * 1000

    def fail(self, status: int) -> None:
        self.errors[status] = self.errors.get(status, 0) + 1

    def record(self, elapsed: float, status: int, ok: int = 200) -> None:
        """Keep `elapsed` when the answer was `ok`, else count the failure by status."""
        if status == ok:
            self.samples.append(elapsed)
        else:
            self.fail(status)

    def line(self, *, rate: bool = True, digits: int = 2) -> str:
        head = f"{self.count} requests in {self.wall:.2f}s = {self.per_second:,.1f}/s; " if rate else ""
        errors = f"; {self.failed} FAILED {dict(sorted(self.errors.items()))}" if self.errors else ""
        return (f"{head}p50 {self.ms(50):.{digits}f} ms, p90 {self.ms(90):.{digits}f} ms, "
                f"p99 {self.ms(99):.{digits}f} ms, max {self.ms(100):.{digits}f} ms{errors}")

    @classmethod
    def merged(cls, parts: list[Latencies], wall: float) -> Latencies:
        """One set of figures from several clients' measured over the same `wall` time."""
        out = cls(wall=wall)
        for part in parts:
            out.samples += part.samples
            for status, n in part.errors.items():
                out.errors[status] = out.errors.get(status, 0) + n
        return out


Call = Callable[[], tuple[float, int]]  # one timed request: (seconds, HTTP status; 0 when nothing answered)


def one_client(call: Call, count: int, warmup: int = 20) -> Latencies:
    """`count` sequential calls after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    out = Latencies()
    start = time.perf_counter()
    for _ in range(count):
        out.record(*call())
    out.wall = time.perf_counter() - start
    return out


def many_clients(calls: list[Call], seconds: float) -> Latencies:
    """Each of `calls` in its own thread (one client each, its connection opened by one untimed call first), all
    started together and calling as fast as they can for `seconds`."""
    parts = [Latencies() for _ in calls]
    for call in calls:
        call()
    barrier = threading.Barrier(len(calls) + 1)
    deadline: list[float] = []

    def work(call: Call, part: Latencies) -> None:
        barrier.wait()
        while time.perf_counter() < deadline[0]:
            part.record(*call())

    threads = [threading.Thread(target=work, args=pair, daemon=True) for pair in zip(calls, parts, strict=True)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    deadline.append(start + seconds)
    barrier.wait()
    for thread in threads:
        thread.join()
    return Latencies.merged(parts, time.perf_counter() - start)


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Print `rows` under `header`: the first column left-aligned, the others right-aligned."""
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for index, row in enumerate(table):
        say("  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                             for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if index == 0:
            say("  " + "  ".join("-" * w for w in widths))


def django_on_sqlite(var_dir: Path, **settings: str) -> dict[str, str]:
    """Point Django at a fresh var dir (SQLite, local artifacts), no broker, with `settings` as environment
    variables; set it up and migrate; return the environment (for a server started from it)."""
    for name in ("DATABASE_URL", "REDIS_URL", "STRATUM_ARTIFACT_ROOT", "STRATUM_S3_BUCKET", "SECRET_KEY"):
        os.environ.pop(name, None)
    os.environ.update({"STRATUM_VAR_DIR": str(var_dir), "STRATUM_HTTPS": "false", "DEBUG": "false",
                       "DJANGO_SETTINGS_MODULE": "stratum.settings", **settings})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return {**os.environ}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, what: str, timeout: float = 180) -> None:
    """Poll GET `url` until it answers below 500; fail when `proc` exits or `timeout` seconds pass."""
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            conn.request("GET", parts.path or "/")
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} did not become ready at {url}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started in its own session (SIGTERM to the group, then SIGKILL)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ------------------------------------------------------------------------------------------ machine load


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait, total


@dataclass
class CpuMeter:
    """Share of the machine's CPU time spent busy between start() and busy() (everything: this benchmark, the
    servers it drives, and whatever else runs on the machine)."""

    idle: int = 0
    total: int = 0

    def start(self) -> CpuMeter:
        if os.path.exists("/proc/stat"):
            self.idle, self.total = _cpu_times()
        return self

    def busy(self) -> float:
        if not os.path.exists("/proc/stat"):
            return math.nan
        idle, total = _cpu_times()
        spent = total - self.total
        return 1 - (idle - self.idle) / spent if spent else math.nan


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of process group `pgid` (a server started
    in its own session: its master and workers). Less sensitive to what else loads the machine than latencies."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # after the command: state, ppid, pgrp, ..., utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def load_line() -> str:
    """The 1, 5 and 15-minute load averages and the CPU count, for a report's header."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} CPUs"


def settle(timeout: float = 180.0, idle: float = 0.85, quiet_seconds: int = 3) -> float:
    """Wait until the machine is quiet (servers just started keep loading in the background, and whichever is
    measured first would pay for it); return the seconds waited. Gives up after `timeout`."""
    if not os.path.exists("/proc/stat"):
        return 0.0
    start = time.perf_counter()
    quiet = 0
    before = _cpu_times()
    while time.perf_counter() - start < timeout and quiet < quiet_seconds:
        time.sleep(1.0)
        after = _cpu_times()
        spent = after[1] - before[1]
        quiet = quiet + 1 if spent and (after[0] - before[0]) / spent >= idle else 0
        before = after
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------- Stratum servers

# Works in this tree (registry.access) and in trees from before roles and tokens moved there.
_MAKE_USER_SCRIPT = """
from django.contrib.auth import get_user_model
try:
    from registry.access import token_create
except ImportError:
    from registry.services import token_create
user = get_user_model().objects.create_user({username!r}, password=None, is_staff={staff!r})
print(token_create(user=user, actor=user, name="bench")[1])
"""


def stratum_env(*, tree: Path, var_dir: Path, port: int, workers: int, database_url: str | None = None,
                extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a Stratum served from `tree`: its own var dir, no broker, plain HTTP; PYTHONPATH puts
    `tree` first, so its packages shadow whatever tree the venv installed."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}}
    env.update({"STRATUM_VAR_DIR": str(var_dir), "STRATUM_HTTPS": "false", "DEBUG": "false",
                "STRATUM_BIND": f"127.0.0.1:{port}", "STRATUM_WEB_PROCESSES": str(workers),
                "DJANGO_SETTINGS_MODULE": "stratum.settings", "PYTHONPATH": str(tree)})
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


def start_stratum(*, var_dir: Path, workers: int, tree: Path = ROOT, server: str = "uwsgi",
                  database_url: str | None = None, username: str = "bench", staff: bool = False,
                  extra_env: dict[str, str] | None = None) -> tuple[str, str, subprocess.Popen]:
    """Migrate a Stratum from `tree` (SQLite in `var_dir`, or `database_url`), create a user and token, and serve
    it as deployed: `tree`'s deploy/uwsgi.ini, or gunicorn sync workers. Return (url, token, process)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    extra = dict(extra_env or {})
    if server == "gunicorn" and workers > 1:
        extra.setdefault("STRATUM_CACHE", "file")  # several processes share one cache (uWSGI's are detected)
    env = stratum_env(tree=tree, var_dir=var_dir, port=port, workers=workers, database_url=database_url,
                      extra=extra)
    manage = [sys.executable, str(tree / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=tree, env=env, check=True, capture_output=True)
    token = subprocess.run([*manage, "shell", "-c", _MAKE_USER_SCRIPT.format(username=username, staff=staff)],
                           cwd=tree, env=env, check=True, capture_output=True,
                           text=True).stdout.strip().splitlines()[-1]
    if server == "uwsgi":
        command = [str(Path(sys.executable).with_name("uwsgi")), "--ini", str(tree / "deploy" / "uwsgi.ini")]
    else:
        command = [str(Path(sys.executable).with_name("gunicorn")), "stratum.wsgi", "-w", str(workers), "-b",
                   f"127.0.0.1:{port}"]
    proc = subprocess.Popen(command, cwd=tree, env=env, stdout=open(var_dir / f"{server}.log", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/healthz", proc, f"{server} from {tree}")
    except BaseException:  # never leave a server that did not come up (or was interrupted) running
        stop(proc)
        raise
    return url, token, proc
