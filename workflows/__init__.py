"""Temporal workflows of the collections process."""
