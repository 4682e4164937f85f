"""Native REST API of the registry (/api/v1/): one module per area (models, versions, artifacts, access), the
helpers they share in common.py, serializers, the error handler and the routes."""
