"""Turns the repository's endpoints.yml into the one the deployment image uses (run by the Dockerfile).

endpoints.yml names the action server as http://localhost:5055/webhook, because `make run` starts one next to
Rasa (and `make cluster` writes a copy with its own URL). In a deployment the action servers are a service of
their own, so the image's copy reads the URL from ACTIONS_URL: the entry becomes the plain scalar
``${ACTIONS_URL}``, which Rasa expands when it loads the file (and refuses to start when it is unset). Tracker
and lock store entries are kept as they are; without them every replica would keep its conversations and
locks to itself, so a file that lacks either is refused.

Usage: python deploy/compose/deploy_endpoints.py ENDPOINTS [OUT]   (OUT defaults to ENDPOINTS: in place)
Exit code: 0 written, 1 the file is not fit for several replicas.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional

import yaml

ACTIONS_URL_REFERENCE = "${ACTIONS_URL}"
SHARED_STORES = ("tracker_store", "lock_store")
HEADER = (
    "# Written at image build by deploy/compose/deploy_endpoints.py from the repository's endpoints.yml:\n"
    "# the action servers' URL comes from ACTIONS_URL.\n"
)


def deploy_endpoints(endpoints: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of ``endpoints`` whose action endpoint URL is ``${ACTIONS_URL}``.

    Raises:
        ValueError: the file names no tracker store or no lock store.
    """
    missing = [key for key in SHARED_STORES if not endpoints.get(key)]
    if missing:
        raise ValueError(f"endpoints.yml names no {' and no '.join(missing)}: replicas could not share them")
    result = dict(endpoints)
    result["action_endpoint"] = {**(endpoints.get("action_endpoint") or {}), "url": ACTIONS_URL_REFERENCE}
    return result


def render(endpoints: Dict[str, Any]) -> str:
    """The YAML text; every ``${VAR}`` value must stay a plain scalar, since Rasa expands only those."""
    text = HEADER + yaml.safe_dump(endpoints, sort_keys=False, default_flow_style=False)
    if f"url: {ACTIONS_URL_REFERENCE}\n" not in text:
        raise ValueError("the action endpoint URL was not written as a plain ${ACTIONS_URL}")
    return text


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python deploy/compose/deploy_endpoints.py ENDPOINTS [OUT]", file=sys.stderr)
        return 1
    source, target = args[0], args[-1]
    with open(source, encoding="utf-8") as handle:
        endpoints = yaml.safe_load(handle) or {}
    try:
        text = render(deploy_endpoints(endpoints))
    except ValueError as error:
        print(f"deploy_endpoints: {error}", file=sys.stderr)
        return 1
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
