"""Issue a logged-in customer's token, as a shop's backend would: for trying logged-in chats locally.

The same few lines a shop's backend runs (docs/channels.md, "Logged-in customers"): a JWT signed with HS256
and the key in ``CUSTOMER_TOKEN_SECRET``, claims ``sub`` (the customer id as a string), ``iat`` and ``exp``
(Unix seconds). The assistant checks it with :class:`channels.rest.customer.CustomerTokens`.

Usage: CUSTOMER_TOKEN_SECRET=... python scripts/customer_token.py CUSTOMER_ID [--lifetime-s SECONDS]
Prints the token on stdout. Exit code: 0, or 2 for a missing/short secret or a bad customer id.
The seeded demo customers have ids 1 (anna.berg@example.com, orders 10017, 10023, 10029) to 6.
"""
from __future__ import annotations

import _bootstrap  # noqa: F401  (the project root on sys.path: scripts/_bootstrap.py)

import argparse
import os
import sys
from typing import Mapping, Optional, Sequence

from channels.rest.customer import MIN_SECRET_CHARS, SECRET_ENV, issue_token

#: Default lifetime of a token, seconds (one hour, as the documented example).
DEFAULT_LIFETIME_S = 3600


def main(argv: Optional[Sequence[str]] = None, environ: Optional[Mapping[str, str]] = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(description="Print a logged-in customer's chat token.")
    parser.add_argument("customer_id", type=int, help="the customer's id (demo customers: 1 to 6)")
    parser.add_argument("--lifetime-s", type=int, default=DEFAULT_LIFETIME_S, help="seconds until it expires")
    args = parser.parse_args(argv)
    secret = (os.environ if environ is None else environ).get(SECRET_ENV, "")
    if len(secret) < MIN_SECRET_CHARS:
        print(
            f"error: set {SECRET_ENV} (at least {MIN_SECRET_CHARS} characters) to the key the assistant "
            "uses, e.g. export CUSTOMER_TOKEN_SECRET="
            "\"$(python -c 'import secrets; print(secrets.token_urlsafe(32))')\"",
            file=sys.stderr,
        )
        return 2
    try:
        print(issue_token(args.customer_id, secret, args.lifetime_s))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
