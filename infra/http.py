"""The worker's HTTP clients for POSTs to endpoints: one pooled, and one without keep-alive for
the rare resend after a stale pooled connection (activities/http_exchange.py)."""

from __future__ import annotations

import httpcore
import httpx

from infra.network_guard import GuardedNetworkBackend, Resolver, system_resolver


def http_client(
    timeout: float, *, allow_private_networks: bool, resolve: Resolver = system_resolver, keep_alive: bool = True
) -> httpx.AsyncClient:
    """The worker's HTTP client: pooled connections (none kept without `keep_alive`), no
    redirects followed, and unless private networks are allowed, connections only to
    public addresses."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50 if keep_alive else 0)
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
    return httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(timeout), transport=transport)
