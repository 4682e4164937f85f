"""GDPR Art. 17 erasure: keyed subject hashes, manifests on dataset versions, requests, impact and obligations."""
