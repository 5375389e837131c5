"""The way of signing in, from settings (environment variables or ``trellis serve`` flags); one at most.

TRELLIS_USERS_FILE          a file of argon2 hashes (``trellis users add NAME``)
TRELLIS_PROXY_USER_HEADER   a header a trusted proxy sets (e.g. X-Forwarded-User), with
TRELLIS_TRUSTED_PROXIES     the proxy's addresses or networks (e.g. 127.0.0.1,10.0.0.0/8)
TRELLIS_MLFLOW_AUTH         an MLflow server running its basic-auth app: its users and permissions
TRELLIS_AUTH                user:password[,user2:password2] (plain text: for a quick try only)

Each module is imported only when chosen (argon2 or requests are not needed otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping

from trellis.app.auth.base import Authenticator

KEYS = ("TRELLIS_USERS_FILE", "TRELLIS_PROXY_USER_HEADER", "TRELLIS_MLFLOW_AUTH", "TRELLIS_AUTH")


def authenticator_from_env(env: Mapping[str, str]) -> Authenticator | None:
    """None when no way is set (the app is open); ValueError with the reason for a setting that is wrong or
    that would silently weaken sign-in (two ways at once, an empty users file, a header without proxies)."""
    chosen = [key for key in KEYS if env.get(key, "") != ""]
    if len(chosen) > 1:
        raise ValueError(f"choose one way of signing in: {', '.join(chosen)} are all set")
    if env.get("TRELLIS_TRUSTED_PROXIES") and chosen != ["TRELLIS_PROXY_USER_HEADER"]:
        raise ValueError("TRELLIS_TRUSTED_PROXIES is set without TRELLIS_PROXY_USER_HEADER")
    if not chosen:
        return None
    key = chosen[0]
    if key == "TRELLIS_USERS_FILE":
        from trellis.app.auth.users_file import HashedUsers

        return HashedUsers(env[key])
    if key == "TRELLIS_PROXY_USER_HEADER":
        from trellis.app.auth.proxy import ProxyHeader, parse_networks

        return ProxyHeader(env[key], parse_networks(env.get("TRELLIS_TRUSTED_PROXIES")))
    if key == "TRELLIS_MLFLOW_AUTH":
        from trellis.app.auth.mlflow_users import MlflowUsers

        url = env[key].strip()
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"TRELLIS_MLFLOW_AUTH: {url!r} is not the http(s) URL of an MLflow server")
        return MlflowUsers(url)
    from trellis.app.auth.plain import PlainUsers, parse_users

    return PlainUsers(parse_users(env[key]))
