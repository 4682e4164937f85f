"""Stratum's database backends."""
