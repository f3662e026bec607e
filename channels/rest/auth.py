"""The REST channel's bearer token: ``Authorization: Bearer <token>`` marks a server-to-server caller.

The token lives in the environment variable that ``token_env`` names (credentials.yml holds the name only) and
is read per request, so it can be rotated without a restart. It is compared in constant time. A caller with
the token may name any conversation (its sender ids become ``api:<id>``); a request without the header must
carry a web conversation id the server signed (:mod:`channels.rest.senders`); a request with a wrong token is
refused (401). While no token is set, the header is ignored and only signed web ids are accepted.
"""
from __future__ import annotations

from typing import Mapping, Optional

from channels.common import secrets_match
from channels.rest.errors import ChannelError

#: ``WWW-Authenticate`` of a refused request.
CHALLENGE = 'Bearer realm="multimodal"'


def expected_token(token_env: Optional[str], environ: Mapping[str, str]) -> Optional[str]:
    """The bearer token POSTs need, or ``None`` when auth is off.

    Args:
        token_env: Name of the variable holding the token; ``None`` or ``""`` turns auth off.
        environ: Where the variable is looked up (``os.environ``).

    Returns:
        The token, or ``None`` when ``token_env`` is empty or the variable is unset or empty.
    """
    if not token_env:
        return None
    return environ.get(token_env) or None


def is_api_caller(authorization: Optional[str], token: Optional[str]) -> bool:
    """Whether the request comes from a server-to-server caller with the bearer token.

    Args:
        authorization: The ``Authorization`` header, ``None`` when missing.
        token: The expected token, from :func:`expected_token` (``None``: no API callers).

    Returns:
        ``True`` for the right token; ``False`` when no token is set or the request has no header.

    Raises:
        ChannelError: 401 ``unauthorized`` for a header with another scheme or a wrong token.
    """
    if token is None or authorization is None:
        return False
    check_bearer(authorization, token)
    return True


def check_bearer(authorization: Optional[str], token: Optional[str]) -> None:
    """Checks a request's ``Authorization`` header against the token (nothing to check when it is ``None``).

    Args:
        authorization: The header value, ``None`` when missing.
        token: The expected token, from :func:`expected_token`.

    Raises:
        ChannelError: 401 ``unauthorized`` with ``WWW-Authenticate: Bearer`` for a missing header, another
            scheme or a wrong token.
    """
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets_match(given.strip(), token):
        raise ChannelError(
            401,
            "unauthorized",
            "This endpoint needs 'Authorization: Bearer <token>'.",
            detail="missing or wrong bearer token",
            headers={"WWW-Authenticate": CHALLENGE},
        )
