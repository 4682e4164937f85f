"""EU AI Act technical documentation (Annex IV) assembled from registry data."""
