"""The user named by a trusted reverse proxy (``X-Forwarded-User``), from allowed proxy addresses only.

The proxy signs users in (SSO, OAuth2 proxy, a company gateway) and passes the name on; a request from any
other address, or from the proxy without the header, is refused, so nobody can name themselves by sending
the header directly to the app.
"""

from __future__ import annotations

import ipaddress
import re

from flask import Response, request

from trellis.app.auth.base import Authenticator

HEADER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
RESERVED = {"authorization", "cookie", "host", "content-type", "content-length", "x-forwarded-for"}
USER = re.compile(r"[^\s,;:<>\"'\\\x00-\x1f]{1,256}")  # one name: no list, no markup, no control characters


def parse_networks(spec: str | None) -> list:
    """``127.0.0.1,10.0.0.0/8`` to networks; empty or a bad entry raises ValueError naming it."""
    networks = []
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"TRELLIS_TRUSTED_PROXIES: {item!r} is not an address or network") from None
        if network.num_addresses > 2**24:  # wider than a /8: anyone could name themselves
            raise ValueError(f"TRELLIS_TRUSTED_PROXIES: {item} trusts too many addresses; name the proxy's")
        networks.append(network)
    if not networks:
        raise ValueError("TRELLIS_TRUSTED_PROXIES: name the proxy's address(es), e.g. 127.0.0.1")
    return networks


class ProxyHeader(Authenticator):
    def __init__(self, header: str, trusted: list) -> None:
        header = header.strip()
        if not HEADER.fullmatch(header) or header.lower() in RESERVED:
            raise ValueError(f"TRELLIS_PROXY_USER_HEADER: {header!r} is not a header a proxy can set for a user")
        self.header = header
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
        values = request.headers.getlist(self.header)
        name = values[0].strip() if len(values) == 1 else ""
        if not name:
            return Response(f"Login required: the proxy sent no {self.header} (or more than one).\n", 401)
        if not USER.fullmatch(name):
            return Response(f"Login refused: {self.header} is not a user name.\n", 401)
        return name
