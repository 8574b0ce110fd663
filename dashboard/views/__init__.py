"""Blueprints: HTML pages, the JSON API and the front-end libraries."""
from flask import Flask


def register(app: Flask) -> None:
    from dashboard.views.api import api
    from dashboard.views.pages import pages
    from dashboard.views.vendor import vendor

    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(vendor)
