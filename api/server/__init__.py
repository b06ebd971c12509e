"""The web server: `app.py` puts the HTTP API (`api/http/`) and the pages (`api/pages/`) into one
FastAPI application, with the read-model projection's thread; `appraisal serve` runs it."""
