"""Deployments app."""
