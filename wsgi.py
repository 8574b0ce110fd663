"""WSGI entry point: `gunicorn -w 1 --threads 100 wsgi:app` (see README)."""
from dashboard import create_app

app = create_app()
