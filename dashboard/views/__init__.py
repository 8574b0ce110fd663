"""Blueprints: HTML pages, the JSON API and the front-end libraries."""
from flask import Flask


def register(app: Flask) -> None:
    from dashboard.views.actions_api import actions_api
    from dashboard.views.api import api
    from dashboard.views.audit import audit_pages
    from dashboard.views.can_act import init_app as init_can_act
    from dashboard.views.auth_pages import auth
    from dashboard.views.celery_api import celery_api
    from dashboard.views.celery_pages import celery_pages
    from dashboard.views.dask_api import dask_api
    from dashboard.views.dask_pages import dask_pages
    from dashboard.views.kafka_api import kafka_api
    from dashboard.views.kafka_burrow import kafka_burrow
    from dashboard.views.kafka_pages import kafka_pages
    from dashboard.views.consul_api import consul_api
    from dashboard.views.consul_pages import consul_pages
    from dashboard.views.history_api import history_api
    from dashboard.views.history_pages import history_pages
    from dashboard.views.pages import pages
    from dashboard.views.store_banner import init_app as init_store_banner
    from dashboard.views.vendor import vendor

    app.register_blueprint(actions_api)
    app.register_blueprint(api)
    app.register_blueprint(audit_pages)
    app.register_blueprint(auth)
    app.register_blueprint(celery_api)
    app.register_blueprint(celery_pages)
    app.register_blueprint(dask_api)
    app.register_blueprint(dask_pages)
    app.register_blueprint(kafka_api)
    app.register_blueprint(kafka_burrow)
    app.register_blueprint(kafka_pages)
    app.register_blueprint(consul_api)
    app.register_blueprint(consul_pages)
    app.register_blueprint(history_api)
    app.register_blueprint(history_pages)  # ahead of pages: replaces its placeholder
    app.register_blueprint(pages)
    app.register_blueprint(vendor)
    init_store_banner(app)
    init_can_act(app)
