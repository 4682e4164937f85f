"""Deployments data (grows with the deployments issues)."""
