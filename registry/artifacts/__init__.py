"""Artifact files: the content-addressed store (storage), path rules (paths), format detection (formats), streamed
uploads (uploads) and the sources a version may be registered from (sources)."""
