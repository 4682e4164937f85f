"""The differences from MLflow that Stratum keeps on purpose, each with its reason (README mirrors this list).

A key is (scenario, answer label, field path without list indexes); ("*", "*", field name) names a field that differs
wherever it appears.
"""

from __future__ import annotations

KNOWN: dict[tuple[str, str, str], str] = {
    ("*", "*", "user_id"):
        "Stratum authenticates every caller and records who created a version; an MLflow server without its auth "
        "app records nobody.",
    ("*", "*", "status_message"):
        "A version whose run_id names a run Stratum does not hold (tracked on another server) says so in its "
        "status_message: 'Run <id> is held elsewhere: not verified by Stratum.' MLflow checks nothing and says "
        "nothing.",
    ("registered_models", "rename onto existing", ".body.message"):
        "MLflow appends its SQL error text to 'Registered Model (name=...) already exists.'; Stratum says only that.",
    ("stages", "archive existing into Archived", ".status"):
        "MLflow raises this client mistake as a 500 INTERNAL_ERROR; Stratum answers 400 INVALID_PARAMETER_VALUE "
        "with MLflow's message.",
    ("stages", "archive existing into Archived", ".body.error_code"): "as above",
    ("stages", "archive existing into Archived", ".body.error_class"): "as above",
    ("stages", "archive existing into Archived", ".body.sqlstate"): "as above",
    **{("model_versions", "get non-ASCII digit version", path):
       "MLflow reads a version with Python's int(), which takes any Unicode digit ('\u0661' is version 1); Stratum "
       "takes ASCII digits only, so one version has one spelling." for path in (".status", ".body.error_code",
       ".body.message", ".body.error_class", ".body.model_version", ".body.sqlstate")},
    **{("model_versions", "get version beyond 64 bits", path):
       "MLflow fails with 500 INTERNAL_ERROR (its database cannot hold the number); Stratum answers 400 "
       "INVALID_PARAMETER_VALUE." for path in (".status", ".body.error_code", ".body.message", ".body.error_class",
                                                ".body.sqlstate")},
    ("experiments", "create duplicate", ".body.message"):
        "MLflow appends its SQL error text to 'Experiment(name=...) already exists.'; Stratum says only that.",
    **{("experiments", label, ".body.experiment.tags" if label.startswith("get") else ".body.experiments.tags"):
       "Stratum keeps an experiment's tags as one JSON document (PostgreSQL's jsonb does not keep key order), so "
       "they come sorted by key; MLflow lists them in the order they were set."
       for label in ("search by name", "get deleted", "search deleted", "get restored", "search by tag",
                     "search by tag LIKE", "search by tag ILIKE", "search by tag !=", "search by backquoted tag",
                     "search by tag IS NOT NULL", "search by absent tag IS NULL")},
    **{("runs_held_elsewhere", "version from a logged model this server does not hold", path):
       "MLflow 3's client registers a run's model as models:/m-<id> with its model_id; a registry that does not "
       "hold that logged model (the tracking server does) fails with 500 on MLflow. Stratum registers it, records "
       "the run as external provenance (not verified by Stratum), and hands the source back from get-download-uri, "
       "so the client loads it from the tracking server." for path in (".status", ".body.error_code",
                                                                      ".body.error_class", ".body.message",
                                                                      ".body.sqlstate", ".body.model_version")},
    ("artifacts_and_sources", "download uri", ".body.artifact_uri"):
        "Stratum copies a version's files from its source when it is registered (they are then immutable, "
        "scanned and signed), so the download URI names that copy (mlflow-artifacts:/registry/...); MLflow answers "
        "the source. The client downloads the same files from either.",
    **{(scenario, label, path): "MLflow's registry searches have no IS NULL / IS NOT NULL: its server fails with a "
       "500 HTML page; Stratum answers 400 INVALID_PARAMETER_VALUE saying where IS [NOT] NULL is supported (tags and "
       "params of runs, tags of experiments, as on MLflow)."
       for scenario, label in (("search_registered_models", "tag IS NULL"),
                               ("search_model_versions", "tag IS NOT NULL"))
       for path in (".status", ".body.<non-json>", ".body.error_code", ".body.message", ".body.error_class",
                    ".body.sqlstate")},
    ("logged_models", "run shows its output", ".body.run.outputs.model_outputs"):
        "Stratum shows a logged model created with source_run_id as that run's output at once; MLflow only after "
        "runs/outputs, which the stock client sends right after creating the model, so clients see the same.",
    ("search_registered_models", "bad order key", ".body.message"):
        "MLflow lists the valid keys from a Python set, whose order changes from one server process to the next; "
        "Stratum names them in a fixed order. Same code and status.",
    ("search_registered_models", "bad filter key", ".body.message"): "as above",
    ("search_model_versions", "bad filter", ".body.message"): "as above",
    ("search_model_versions", "bad order", ".body.message"): "as above",
    ("search_registered_models", "bad filter", ".body.message"):
        "Stratum parses MLflow's filter language with its own parser (never SQL text); a malformed filter gets "
        "the same code and status with the parser's own wording.",
    ("bad_requests", "body not JSON", ".body.error_code"):
        "MLflow reads a body that is not JSON as an empty request; Stratum refuses it as MALFORMED_REQUEST (400 on "
        "both) rather than guess what the caller meant.",
    ("bad_requests", "body not JSON", ".body.message"): "as above",
    ("bad_requests", "body not JSON", ".body.error_class"): "as above",
    ("bad_requests", "body not JSON", ".body.sqlstate"): "as above",
    ("bad_requests", "body a list", ".status"):
        "MLflow fails with a 500 HTML page on a JSON body that is not an object; Stratum answers 400 "
        "INVALID_PARAMETER_VALUE in MLflow's error shape.",
    **{("bad_requests", label, path): "MLflow's server answers an unknown route or method with Flask's HTML page "
       "(same 404 or 405); Stratum answers in MLflow's JSON error shape (ENDPOINT_NOT_FOUND), which the client "
       "can read." for label in ("unknown route", "wrong method", "body a list")
       for path in (".body.<non-json>", ".body.error_code", ".body.message", ".body.error_class", ".body.sqlstate")},
}
