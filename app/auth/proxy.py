"""The user named by a trusted reverse proxy (``X-Forwarded-User``), from allowed proxy addresses only.

The proxy signs users in (SSO, OAuth2 proxy, a company gateway) and passes the name on; a request from any
other address, or from the proxy without the header, is refused, so nobody can name themselves by sending
the header directly to the app.
"""

from __future__ import annotations

import ipaddress

from flask import Response, request

from app.auth.base import Authenticator


def parse_networks(spec: str | None) -> list:
    """``127.0.0.1,10.0.0.0/8`` to networks; empty or a bad entry raises ValueError naming it."""
    networks = []
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"TRELLIS_TRUSTED_PROXIES: {item!r} is not an address or network") from None
    if not networks:
        raise ValueError("TRELLIS_TRUSTED_PROXIES: name the proxy's address(es), e.g. 127.0.0.1")
    return networks


class ProxyHeader(Authenticator):
    def __init__(self, header: str, trusted: list) -> None:
        if not header.strip():
            raise ValueError("TRELLIS_PROXY_USER_HEADER: empty header name")
        self.header = header.strip()
        self.trusted = trusted

    def _from_proxy(self) -> bool:
        try:
            address = ipaddress.ip_address((request.remote_addr or "").split("%")[0])
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def user(self) -> str | Response:
        if not self._from_proxy():
            return Response("Forbidden: sign in through the proxy.\n", 403)
        name = (request.headers.get(self.header) or "").strip()
        if not name or len(name) > 256:
            return Response(f"Login required: the proxy sent no {self.header}.\n", 401)
        return name
