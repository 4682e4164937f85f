"""Registry pages, one module per area (models, versions, tokens); the helpers they share are in views/common.py."""
