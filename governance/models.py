"""Governance data (grows with the governance issues)."""
