"""Typed keys for what the app shares between requests."""

import asyncio

import asyncpg
from aiohttp import web

from service.changes import ChangeFeed
from service.db import Lease, StatementCounter
from service.openapi import ApiDocument
from service.queries import Queries
from service.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
QUERIES = web.AppKey("queries", Queries)
POOL = web.AppKey("pool", asyncpg.Pool)
FEED = web.AppKey("feed", ChangeFeed)
STATEMENTS = web.AppKey("statements", StatementCounter)
#: Bounds the password checks running at once in a worker, each a tenth of a second of CPU.
PASSWORD_CHECKS = web.AppKey("password_checks", asyncio.Semaphore)
#: The pooled connections that requests which may hold theirs long share (service.db.Lease).
LONG_REQUESTS = web.AppKey("long_requests", asyncio.Semaphore)
#: The app's Prometheus metrics (a service.metrics.Metrics, which is imported late on purpose).
METRICS = web.AppKey("metrics", object)
#: The key of the ETags' keyed hash.
ETAG_SECRET = web.AppKey("etag_secret", bytes)
#: The OpenAPI document as read at start.
API_DOCUMENT = web.AppKey("api_document", ApiDocument)

REQUEST_ID = web.RequestKey("request_id", str)
#: Who the client is behind the proxies (a service.forwarded.Client), once asked.
CLIENT = web.RequestKey("client", object)
#: The request's pooled connection, taken on first use (a service.db.Lease).
LEASE = web.RequestKey("lease", Lease)
USER_ID = web.RequestKey("user_id", int)
#: The statement runner bound to the authenticated user (a service.db.UserData).
DATA = web.RequestKey("data", object)
PRINT_ID = web.RequestKey("print_id", int)
#: The user's data version that request[PRINT] is as of, read in the same statement.
PRINT_VERSION = web.RequestKey("print_version", int)
#: The answer to a GET of one print, when the worker kept it under the current version.
KEPT_ANSWER = web.RequestKey("kept_answer", object)
#: The print a route's {print_id} names, as the ownership middleware loaded it.
PRINT = web.RequestKey("print", object)
