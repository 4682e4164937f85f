"""The operations plug point: an app that serves versions reports how a version is deployed, measured and watched.

The registry core knows nothing of endpoints or rollouts; readers such as governance's technical documentation ask
here instead, and the serving app answers through a reporter it registers at start-up (the gate pattern).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# What a report holds; every key is a list of plain, JSON-ready dicts.
REPORT_KEYS = ("deployments", "gateway", "analyses", "monitoring")

Reporter = Callable[..., dict[str, list[dict[str, Any]]]]
_reporters: list[Reporter] = []


def register_reporter(reporter: Reporter) -> None:
    """Install `reporter`; it is called with version= and returns lists under some of REPORT_KEYS."""
    if reporter not in _reporters:
        _reporters.append(reporter)


def unregister_reporter(reporter: Reporter) -> None:
    """Remove a previously installed reporter."""
    if reporter in _reporters:
        _reporters.remove(reporter)


def has_reporters() -> bool:
    """True when some installed app reports operations (False means nobody could say, not that nothing runs)."""
    return bool(_reporters)


def version_operations(*, version: Any) -> dict[str, list[dict[str, Any]]]:
    """Return what the installed reporters know of an already visible version, merged key by key."""
    report: dict[str, list[dict[str, Any]]] = {key: [] for key in REPORT_KEYS}
    for reporter in list(_reporters):
        for key, rows in (reporter(version=version) or {}).items():
            if key in report:
                report[key].extend(rows)
    return report
