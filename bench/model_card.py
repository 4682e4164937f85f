"""Benchmark: render one fully filled model card to PDF (target: under 2 s), and the JSON/MCT/Markdown exports.

Usage: .venv/bin/python bench/model_card.py [--runs 10] [--metrics 20] [--slices 40]
Runs against a throw-away SQLite database in a temporary STRATUM_VAR_DIR; prints the median and worst times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    """Build a version with a complete card, then time its exports."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--slices", type=int, default=40)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="stratum-bench-")
    os.environ["STRATUM_VAR_DIR"] = scratch
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stratum.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from governance.cards import exports, pdf, services
    from registry import services as registry_services

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", email="bench@example.com", is_staff=True)
    model = registry_services.model_create(actor=user, name="bench-card", description="Benchmark model.")
    metrics = {f"metric_{i:02d}": 0.5 + i / 100 for i in range(args.metrics)}
    datasets = [{"name": f"dataset-{i}", "uri": f"s3://bench/{i}", "digest": "sha256:" + f"{i:064d}",
                 "role": role} for i, role in enumerate(("train", "validation", "test"))]
    version = registry_services.version_create(model=model, actor=user, metrics=metrics, params={"depth": "6"},
                                               code_commit="c" * 40, code_repository="git@example.com:bench.git",
                                               datasets=datasets, files=[])
    card = services.card_create(version=version, actor=user)
    prose = "A paragraph of **Markdown** with a [link](https://example.com) and a list:\n\n- one\n- two\n" * 3
    for section, values in {
        "model_details": {"overview": prose, "license": "apache-2.0"},
        "intended_use": {"primary_uses": prose, "primary_users": prose, "out_of_scope": prose},
        "factors": {"relevant_factors": prose, "evaluation_factors": prose},
        "metrics": {"decision_thresholds": prose},
        "evaluation_data": {"description": prose},
        "quantitative_analyses": {"unitary_results": prose, "slices": [
            {"slice": f"segment {i}", "metric": "metric_00", "value": 0.7 + (i % 7) / 50,
             "ci_lower": 0.65 + (i % 7) / 50, "ci_upper": 0.75 + (i % 7) / 50} for i in range(args.slices)]},
        "ethical_considerations": {"risks_and_harms": prose, "mitigations": prose},
        "caveats_recommendations": {"limitations": prose, "recommendations": prose},
        "human_oversight": {"description": prose},
    }.items():
        card = services.card_update(card=card, actor=user, section=section, values=values)
    timings: dict[str, list[float]] = {"pdf": [], "md": [], "mct": [], "json": []}
    cpu: list[float] = []
    size = 0
    for _ in range(args.runs):
        for fmt in timings:
            started = time.perf_counter()
            if fmt == "pdf":
                cpu_started = time.process_time()
                data = pdf.render_pdf([card], user)
                cpu.append(time.process_time() - cpu_started)
                size = len(data)
            elif fmt == "md":
                exports.card_markdown(card)
            elif fmt == "mct":
                exports.card_mct(card)
            else:
                exports.card_json(card)
            timings[fmt].append(time.perf_counter() - started)
    print(f"card: {args.metrics} metrics, {args.slices} slices, completeness {card.completeness}%, "
          f"PDF {size / 1024:.0f} KiB")
    for fmt, values in timings.items():
        print(f"{fmt:>4}: median {statistics.median(values) * 1000:8.1f} ms, worst {max(values) * 1000:8.1f} ms "
              f"over {len(values)} runs")
    print(f" pdf: median CPU time {statistics.median(cpu) * 1000:8.1f} ms (wall time suffers on a busy machine)")
    worst = max(timings["pdf"])
    print(f"single card PDF under 2 s: {'yes' if worst < 2 else 'NO'} (worst {worst:.2f} s)")


if __name__ == "__main__":
    main()
