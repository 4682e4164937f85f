"""Compare Stratum's artifact scanner with picklescan and modelscan on corpora built in this run.

Usage: .venv/bin/python bench/scan_corpus.py [--keep DIR]

Builds the benign and malicious corpora of tests/registry/scan_corpus.py into a temporary folder (the malicious
files are written as bytes and never loaded), runs every tool on every file and prints, per tool, the detection
rate (malicious files flagged), the false positives (benign files flagged), the files it could not read, and the
time taken. A file counts as flagged when the tool reports it unsafe or with issues (Stratum: quarantined).

picklescan is installed from the project's dev extras. modelscan pins rich<15, which the project's dev tools
(schemathesis, import-linter) need at 15, so it is installed into its own virtualenv, var/bench-venv, created here
on first use at the pin of pyproject's `bench-modelscan` extra, and run through its CLI with JSON output.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from importlib.metadata import version
from pathlib import Path

from common import ROOT

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stratum.settings")

VENV = ROOT / "var" / "bench-venv"


def _modelscan_pin() -> str:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return next(req for req in extras["bench-modelscan"] if req.startswith("modelscan=="))


def _modelscan_cli() -> Path:
    """Create var/bench-venv with the pinned modelscan if it is not there yet; return its CLI."""
    cli = VENV / "bin" / "modelscan"
    pin = _modelscan_pin()
    marker = VENV / ".pin"
    if cli.exists() and marker.exists() and marker.read_text() == pin:
        return cli
    print(f"installing {pin} into {VENV.relative_to(ROOT)} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", pin], check=True)
    marker.write_text(pin)
    return cli


def run_stratum(paths: list[Path]) -> tuple[dict[Path, tuple[bool, bool]], float]:
    """Stratum's scan_file on each file, format detected from content: (flagged, scan error) per file."""
    import django

    django.setup()
    from registry.artifacts.formats import SNIFF_BYTES, detect_format
    from registry.pipeline.scan.analysis import scan_file

    out = {}
    started = time.perf_counter()
    for path in paths:
        with open(path, "rb") as fh:
            fmt = detect_format(fh.read(SNIFF_BYTES))
            fh.seek(0)
            report = scan_file(fh, fmt=fmt, max_bytes=2 * 1024**3, timeout=120)
        out[path] = (report.quarantined, report.verdict == "error")
    return out, time.perf_counter() - started


def run_picklescan(paths: list[Path]) -> tuple[dict[Path, tuple[bool, bool]], float]:
    """picklescan's scan_file_path on each file: flagged when it finds a dangerous global."""
    import logging

    from picklescan.scanner import scan_file_path

    logging.getLogger("picklescan").setLevel(logging.CRITICAL)  # one line per finding otherwise
    out = {}
    started = time.perf_counter()
    for path in paths:
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                result = scan_file_path(str(path))
            out[path] = (result.infected_files > 0, bool(result.scan_err))
        except Exception:  # a crash on a file: not flagged, counted as an error
            out[path] = (False, True)
    return out, time.perf_counter() - started


def run_modelscan(paths: list[Path], folder: Path) -> tuple[dict[Path, tuple[bool, bool]], float]:
    """modelscan's CLI once over the folder (JSON report): flagged when any issue names the file."""
    cli = _modelscan_cli()
    report_path = folder.parent / f"{folder.name}-modelscan.json"
    started = time.perf_counter()
    subprocess.run([str(cli), "-p", str(folder), "-r", "json", "-o", str(report_path)], capture_output=True,
                   check=False)
    elapsed = time.perf_counter() - started
    report = json.loads(report_path.read_text())

    def named(entry: dict) -> str:
        return str(entry.get("source", "")).split(":", 1)[0].split("/", 1)[0]

    issues = {named(i) for i in report.get("issues", [])}
    errors = {named(e) for e in report.get("errors", [])}
    return {p: (p.name in issues, p.name in errors) for p in paths}, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the corpora here and keep them")
    args = parser.parse_args()
    import django

    django.setup()
    from tests.registry.scan_corpus import benign_corpus, describe, malicious_corpus, write_corpus

    work = args.keep or Path(tempfile.mkdtemp(prefix="stratum-scan-corpus-"))
    built = time.perf_counter()
    benign, malicious = benign_corpus(), malicious_corpus()
    benign_paths = write_corpus(benign, work / "benign")
    malicious_paths = write_corpus(malicious, work / "malicious")
    print(f"corpus: {len(benign)} benign files of {len(describe(benign))} kinds, {len(malicious)} malicious files "
          f"of {len(describe(malicious))} payload styles (built in {time.perf_counter() - built:.1f} s, {work})")

    results = {}
    for tool, runner in (("Stratum", lambda ps, _f: run_stratum(ps)),
                         (f"picklescan {version('picklescan')}", lambda ps, _f: run_picklescan(ps)),
                         (_modelscan_pin().replace("==", " "), run_modelscan)):
        good, t1 = runner(benign_paths, work / "benign")
        bad, t2 = runner(malicious_paths, work / "malicious")
        results[tool] = (good, bad, t1 + t2)

    print()
    print(f"{'tool':<18}{'detected':>14}{'detection':>11}{'false pos.':>12}{'read errors':>13}{'time':>9}")
    for tool, (good, bad, elapsed) in results.items():
        detected = sum(flag for flag, _ in bad.values())
        false_pos = sum(flag for flag, _ in good.values())
        errors = sum(err for _, err in list(good.values()) + list(bad.values()))
        print(f"{tool:<18}{detected:>8}/{len(bad):<5}{100 * detected / len(bad):>10.1f}%"
              f"{false_pos:>7}/{len(good):<4}{errors:>13}{elapsed:>8.2f}s")

    print("\nmissed by each tool (malicious, not flagged):")
    for tool, (_good, bad, _e) in results.items():
        missed = sorted({malicious[i].kind for i, p in enumerate(malicious_paths) if not bad[p][0]})
        print(f"  {tool}: {len(missed)} style(s)" + (": " + "; ".join(missed) if missed else ""))
    print("\nfalse positives of each tool (benign, flagged):")
    for tool, (good, _bad, _e) in results.items():
        flagged = [benign[i].name for i, p in enumerate(benign_paths) if good[p][0]]
        print(f"  {tool}: {len(flagged)}" + (": " + ", ".join(flagged) if flagged else ""))


if __name__ == "__main__":
    main()
