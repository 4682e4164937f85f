"""The tracking names that code outside the tracking package calls, gathered from the modules of their areas.

Tracking lives in experiments, runs, logged_models, artifacts and provenance; import from those. This module
keeps the two outside callers working unchanged (registry.mlflow.shapes and registry.services, which other
work owns at the time of the split): once they import the area modules, it can go.
"""

from registry.tracking.artifacts import logged_model_artifact_uri, run_artifact_uri
from registry.tracking.provenance import source_provenance
from registry.tracking.runs import latest_metrics

__all__ = ["latest_metrics", "logged_model_artifact_uri", "run_artifact_uri", "source_provenance"]
