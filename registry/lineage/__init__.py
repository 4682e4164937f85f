"""Lineage: the graph's data (models), writes (services), reads and walks (selectors), its drawing (layout),
pages (views) and API (api)."""
