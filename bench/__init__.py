"""Benchmarks of the admin UI's heavier pages (not part of the product; see bench/README.md)."""
