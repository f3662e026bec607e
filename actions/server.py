"""The action server, bound to loopback and locked with a shared token: ``python -m actions.server``.

rasa-sdk 3.6's own ``rasa run actions`` listens on every interface and answers anyone: whoever reaches it can
run ``action_cancel_order`` on a tracker they wrote themselves. This launcher serves the same application
(``rasa_sdk.endpoint.create_app`` with the actions of this package) with two differences:

* It binds ``127.0.0.1`` unless ``ACTIONS_HOST`` (or ``--host``) names another address.
* When ``ACTION_SERVER_TOKEN`` is set, every request but ``GET /health`` must carry it as the query parameter
  ``token`` — what Rasa sends when endpoints.yml has ``action_endpoint.token: ${ACTION_SERVER_TOKEN}``;
  anything else gets ``401`` and one log line, and no action runs. Tokens are compared in constant time.

Binding an address other than loopback without a token refuses to start. The run scripts
(``scripts/lib.sh``) generate a random token per start when none is set.

Environment: ``ACTIONS_HOST`` (default 127.0.0.1), ``ACTIONS_PORT`` (default 5055), ``ACTION_SERVER_TOKEN``
(at least 16 characters when set; e.g. ``python -c 'import secrets; print(secrets.token_urlsafe(32))'``),
``DATABASE_URL`` (the shop database the actions use).
"""
from __future__ import annotations

import argparse
import hmac
import ipaddress
import logging
import os
import sys
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

if TYPE_CHECKING:  # hints only
    from sanic import Sanic

logger = logging.getLogger(__name__)

#: Address the action server listens on unless ACTIONS_HOST says otherwise.
DEFAULT_HOST = "127.0.0.1"
#: Port unless ACTIONS_PORT says otherwise (Rasa's default action server port).
DEFAULT_PORT = 5055
#: The query parameter Rasa sends the token in (`EndpointConfig.token_name`'s default).
TOKEN_PARAMETER = "token"
#: Shortest token accepted, in characters.
MIN_TOKEN_CHARS = 16
#: Paths answered without the token (the liveness probe, which tells nothing).
OPEN_PATHS = frozenset({"/health"})


class ServerConfigError(ValueError):
    """The action server's settings are unsafe or malformed; the message says what to change."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def check_settings(host: str, token: Optional[str]) -> None:
    """Refuses settings that would expose the actions.

    Raises:
        ServerConfigError: a token shorter than `MIN_TOKEN_CHARS`, or a non-loopback ``host`` without a token.
    """
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ServerConfigError(
            f"ACTION_SERVER_TOKEN is {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if token is None and not is_loopback(host):
        raise ServerConfigError(
            f"refusing to serve the actions on {host} without a token: set ACTION_SERVER_TOKEN (and "
            "action_endpoint.token in endpoints.yml), or bind 127.0.0.1"
        )


def token_matches(given: Optional[str], expected: str) -> bool:
    """Constant-time comparison of the request's token with the expected one."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def create_app(token: Optional[str], actions_package: str = "actions") -> "Sanic":
    """The rasa-sdk action server application, with the token check as a request middleware.

    Args:
        token: The shared token; None serves without one (loopback only, see :func:`check_settings`).
        actions_package: The package whose actions are registered.

    Returns:
        The Sanic app (routes ``/health``, ``/webhook``, ``/actions`` of rasa-sdk).
    """
    from rasa_sdk.endpoint import create_app as create_sdk_app
    from sanic import response
    from sanic.request import Request

    app = create_sdk_app(actions_package, cors_origins="")

    if token is not None:

        @app.middleware("request")
        async def require_token(request: Request):  # type: ignore[no-untyped-def]
            if request.path in OPEN_PATHS:
                return None
            if token_matches(request.args.get(TOKEN_PARAMETER), token):
                return None
            logger.warning(
                "Refused %s %s from %s: %s token", request.method, request.path, request.ip,
                "wrong" if TOKEN_PARAMETER in request.args else "no",
            )
            return response.json({"error": "a valid token is required"}, status=401)

    return app


def settings_from_env(environ: Optional[Mapping[str, str]] = None) -> tuple:
    """``(host, port, token)`` from ``ACTIONS_HOST``, ``ACTIONS_PORT`` and ``ACTION_SERVER_TOKEN``.

    Raises:
        ServerConfigError: a port that is not an integer in 1..65535.
    """
    env = os.environ if environ is None else environ
    host = (env.get("ACTIONS_HOST") or DEFAULT_HOST).strip()
    raw_port = (env.get("ACTIONS_PORT") or str(DEFAULT_PORT)).strip()
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        raise ServerConfigError(f"ACTIONS_PORT must be a port number, got {raw_port!r}")
    token = env.get("ACTION_SERVER_TOKEN") or None
    return host, int(raw_port), token


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point: serve until stopped; 2 for unsafe or malformed settings."""
    parser = argparse.ArgumentParser(description="The shop assistant's action server (loopback, token).")
    parser.add_argument("--host", default=None, help=f"default: ACTIONS_HOST or {DEFAULT_HOST}")
    parser.add_argument("--port", type=int, default=None, help=f"default: ACTIONS_PORT or {DEFAULT_PORT}")
    parser.add_argument("--actions", default="actions", help="package of the actions (default: actions)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        host, port, token = settings_from_env()
        host = args.host or host
        port = args.port or port
        check_settings(host, token)
    except ServerConfigError as error:
        print(f"action server: {error}", file=sys.stderr)
        return 2
    app = create_app(token, args.actions)
    logger.info(
        "Action server on http://%s:%d (%s)", host, port, "token required" if token else "no token: loopback"
    )
    app.run(host=host, port=port, workers=1, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
