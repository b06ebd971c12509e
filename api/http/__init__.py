"""The HTTP API (FastAPI): `api.http.app.create_app`, served by `appraisal serve`."""
