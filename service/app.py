"""The application factory: routes, middleware, and the pool's life in a cleanup context."""

import asyncio
import hashlib
import logging

import asyncpg
from aiohttp import web
from aiohttp_session import session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from service.changes import ChangeFeed
from service.cors import preflight_middleware, send_cors_headers
from service.db import (
    CONNECTION_FAILURES,
    StatementCounter,
    create_pool,
    pooler_settings_missing,
)
from service.handlers import LoginView, LogoutView, OpenAPIView, PrintsView, PrintView
from service.health import HealthView, ReadyView
from service.keys import (
    API_DOCUMENT,
    ETAG_SECRET,
    FEED,
    LONG_REQUESTS,
    METRICS,
    PASSWORD_CHECKS,
    POOL,
    QUERIES,
    SETTINGS,
    STATEMENTS,
)
from service.limits import body_limit_middleware, parser_limits
from service.middleware import (
    auth_middleware,
    connection_middleware,
    error_middleware,
    ownership_middleware,
    send_request_id,
    send_security_headers,
)
from service.openapi import DOCUMENT_ROUTE, ApiDocument
from service.queries import Queries
from service.settings import Settings

logger = logging.getLogger(__name__)

SESSION_COOKIE = "printapi_session"


def _add(app: web.Application, path: str, view) -> None:
    """Routes ``path`` with its trailing slash and without it: clients use both."""
    app.router.add_view(path, view)
    app.router.add_view(path.rstrip("/"), view)


def create_app(settings: Settings, extra_routes=()) -> web.Application:
    """Builds the app for ``settings``, whose database_url must name the database to use.

    ``extra_routes`` are (path, view) pairs added behind the same middleware; tests use them
    to show that a handler cannot reach what the middleware refuses.
    """
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url")

    secret = settings.session_key()
    storage = EncryptedCookieStorage(
        secret,
        cookie_name=SESSION_COOKIE,
        max_age=settings.session_max_age,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="Lax",
        path="/",
    )
    # Imported here, not at the top: prometheus_client picks its mode for several processes
    # on its first import, which must come after `printapi serve` has named its directory.
    from service.metrics import Metrics, MetricsView, metrics_middleware, pool_readings

    app = web.Application(
        middlewares=[
            metrics_middleware,
            error_middleware,
            preflight_middleware,
            body_limit_middleware,
            session_middleware(storage),
            connection_middleware,
            auth_middleware,
            ownership_middleware,
        ],
        client_max_size=settings.max_body_bytes,
        # Every server of this app, `printapi serve` and the tests' alike, parses requests
        # within these limits.
        handler_args=parser_limits(settings),
    )
    app[SETTINGS] = settings
    app[QUERIES] = Queries()
    app[STATEMENTS] = StatementCounter()
    app[PASSWORD_CHECKS] = asyncio.Semaphore(2)
    app[LONG_REQUESTS] = asyncio.Semaphore(settings.long_request_limit)
    app[ETAG_SECRET] = hashlib.blake2b(secret, person=b"printapi-etag").digest()
    app[API_DOCUMENT] = ApiDocument.load()
    app[METRICS] = Metrics()

    _add(app, "/api/v1/prints/", PrintsView)
    for prefix in ("/api/v1/prints/", "/api/v1/print/"):
        _add(app, prefix + "{print_id}/", PrintView)
    _add(app, "/api/v1/auth/login/", LoginView)
    _add(app, "/api/v1/auth/logout/", LogoutView)
    app.router.add_view(DOCUMENT_ROUTE, OpenAPIView)
    app.router.add_view("/healthz", HealthView)
    app.router.add_view("/readyz", ReadyView)
    app.router.add_view("/metrics", MetricsView)
    for path, view in extra_routes:
        app.router.add_view(path, view)

    app.on_response_prepare.append(send_request_id)
    app.on_response_prepare.append(send_security_headers)
    app.on_response_prepare.append(send_cors_headers)
    app.cleanup_ctx.append(_pool_context)
    app.cleanup_ctx.append(pool_readings)
    return app


async def _pool_context(app: web.Application):
    settings = app[SETTINGS]
    app[POOL] = await create_pool(settings.database_url, settings, app[STATEMENTS])
    if settings.transaction_pooling:
        await _check_pooler_settings(app)

    # Notifications reach only a session of the server's own: never through a pooler.
    app[FEED] = ChangeFeed(settings.direct_url, answer_bytes=settings.answer_cache_bytes)
    await app[FEED].start()
    yield
    await app[FEED].close()
    await app[POOL].close()


async def _check_pooler_settings(app: web.Application) -> None:
    """Warns when the settings the pool cannot send at startup did not reach the server."""
    settings = app[SETTINGS]
    try:
        async with asyncio.timeout(settings.acquire_timeout):
            missing = await pooler_settings_missing(app[POOL], app[QUERIES], settings)
    except (*CONNECTION_FAILURES, asyncpg.PostgresError) as error:
        logger.warning("cannot read the session settings through the pooler: %r", error)
        return

    if missing:
        logger.warning(
            "the pooler's server connections lack session settings (%s); set them in its "
            "connect_query (deploy/pgbouncer.ini) or with ALTER ROLE ... SET",
            "; ".join(missing),
        )
