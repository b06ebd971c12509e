"""The HTTP API (FastAPI): its routes, authentication, errors and read side; `api/server/app.py` serves
it with the pages."""
