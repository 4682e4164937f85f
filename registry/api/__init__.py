"""Native REST API of the registry (/api/v1/)."""
