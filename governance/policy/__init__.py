"""Promotion policy as code: versioned, schema-validated documents that say what a protected move needs."""
