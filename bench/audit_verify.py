"""Benchmark: append N audit events through the real append path, then time `verify_audit` over them.

Usage: .venv/bin/python bench/audit_verify.py [--events 100000]
Runs against a throw-away SQLite database (or DATABASE_URL, whose audit table it fills: use a scratch database).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    """Fill the chain, then verify it and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="events appended per transaction")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="stratum-bench-")
    os.environ.setdefault("STRATUM_VAR_DIR", scratch)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stratum.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from governance import audit, services
    from governance.models import AuditEvent

    call_command("migrate", verbosity=0)
    start_count = AuditEvent.objects.count()
    started = time.perf_counter()
    for offset in range(0, args.events, args.batch):
        with transaction.atomic():
            for i in range(offset, min(offset + args.batch, args.events)):
                audit.append(action="model_version.updated", actor=None, target_type="registry.modelversion",
                             target_id=i, target_label=f"bench v{i}", model_id=1, model_name="bench",
                             version_number=i,
                             data={"metrics": {"after": {"auc": 0.5 + i / 1e7}}, "note": "é" * 8})
    append_s = time.perf_counter() - started
    services.audit_checkpoint_create()
    total = AuditEvent.objects.count()
    started = time.perf_counter()
    verdict = audit.verify()
    verify_s = time.perf_counter() - started
    print(f"database: {connection.vendor}")
    added = total - start_count
    print(f"appended {added} events in {append_s:.2f}s "
          f"({added / append_s:,.0f} events/s, {append_s / max(added, 1) * 1e6:.0f} µs each)")
    print(f"verified {verdict.events} events and {verdict.checkpoints} checkpoint(s) in {verify_s:.2f}s "
          f"({verdict.events / verify_s:,.0f} events/s): {'OK' if verdict.ok else 'BROKEN'}")


if __name__ == "__main__":
    main()
