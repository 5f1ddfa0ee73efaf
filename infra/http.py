"""The worker's HTTP client for POSTs to endpoints."""

from __future__ import annotations

import httpcore
import httpx

from infra.network_guard import GuardedNetworkBackend, Resolver, system_resolver

# How long an idle connection is kept for the next POST. A receiver that closes an idle
# connection just as a request is sent on it may have read that request, so it cannot
# safely be sent again: the pool lets go first. Below the shortest idle timeouts of common
# servers (gunicorn 2 s; uvicorn, Node.js and Apache 5 s; nginx 75 s), with room for the
# answer's way back; an endpoint with a POST at least this often keeps its connection.
KEEPALIVE_EXPIRY_SECONDS = 1.5


def http_client(
    timeout: float,
    *,
    allow_private_networks: bool,
    resolve: Resolver = system_resolver,
    posts_at_once: int = 200,
) -> httpx.AsyncClient:
    """The worker's HTTP client: pooled connections, no redirects followed, and unless private
    networks are allowed, connections only to public addresses. `posts_at_once`: the most POSTs
    the worker can have in flight, each holding a connection; the pool holds as many, so no
    POST waits for one (a wait would eat into the receiver's time)."""
    limits = httpx.Limits(
        max_connections=posts_at_once, max_keepalive_connections=50, keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS
    )
    transport = httpx.AsyncHTTPTransport(limits=limits)
    if not allow_private_networks:
        # httpx takes no network backend, so its connection pool is built here with ours.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(resolve),
        )
    # A POST that waited half its time for a free connection is interrupted and retried, not sent
    # with what is left of its time (a full pool wait would end on the attempt's own deadline,
    # which reads as the receiver not answering).
    timeouts = httpx.Timeout(timeout, pool=timeout / 2)
    return httpx.AsyncClient(follow_redirects=False, timeout=timeouts, transport=transport)
