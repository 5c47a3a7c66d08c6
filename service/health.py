"""GET /healthz and GET /readyz: what a load balancer or an orchestrator asks, unauthenticated.

/healthz says the process answers, and touches nothing else: a database outage must not get
every worker restarted. /readyz says the process can serve: the database answers and its
migrations are the ones this code expects. It runs one cheap read per probe.
"""

from aiohttp import web

from service import errors
from service.keys import LEASE, QUERIES
from service.migrate import pending
from service.models import dumps


class HealthView(web.View):
    """GET /healthz: 200 while the process answers at all."""

    public = True

    async def get(self) -> web.Response:
        return web.json_response({"status": "ok"}, dumps=dumps)


class ReadyView(web.View):
    """GET /readyz: 200 when the database answers and is migrated; else 503 saying why."""

    public = True

    async def get(self) -> web.Response:
        connection = await self.request[LEASE].connection()
        missing = await pending(connection, self.request.app[QUERIES])
        if missing:
            raise errors.ServiceUnavailable(f"Migrations not applied: {', '.join(missing)}.")
        return web.json_response({"status": "ready"}, dumps=dumps)
