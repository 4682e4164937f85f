"""Governance app."""
