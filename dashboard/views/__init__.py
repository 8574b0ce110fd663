"""Blueprints: HTML pages, the JSON API and the front-end libraries."""
from flask import Flask


def register(app: Flask) -> None:
    from dashboard.views.actions_api import actions_api
    from dashboard.views.api import api
    from dashboard.views.audit import audit_pages
    from dashboard.views.auth_pages import auth
    from dashboard.views.celery_api import celery_api
    from dashboard.views.celery_pages import celery_pages
    from dashboard.views.pages import pages
    from dashboard.views.store_banner import init_app as init_store_banner
    from dashboard.views.vendor import vendor

    app.register_blueprint(actions_api)
    app.register_blueprint(api)
    app.register_blueprint(audit_pages)
    app.register_blueprint(auth)
    app.register_blueprint(celery_api)
    app.register_blueprint(celery_pages)
    app.register_blueprint(pages)
    app.register_blueprint(vendor)
    init_store_banner(app)
