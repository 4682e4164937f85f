"""Version comparison: the comparison and trend logic (selectors), its pages (views) and its API (api)."""
