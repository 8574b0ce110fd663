"""WSGI entry point: `gunicorn -w 1 --threads 100 wsgi:app` (see README)."""
from dashboard import create_app
from dashboard.serving import freeze_startup_heap

app = create_app()
freeze_startup_heap()
