"""The artifact pipeline: durable jobs, static pickle scanning, the sandboxed loader and conversions."""
