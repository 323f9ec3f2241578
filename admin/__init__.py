"""The collectors' admin UI: FastAPI with server-rendered Jinja2 pages (`python -m admin`)."""
