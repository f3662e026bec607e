"""A `requests.Response` built in memory, for transports that stand in for a remote server in unit tests."""
from __future__ import annotations

import io
from typing import Any, Mapping, Tuple, Union

import requests
from requests.structures import CaseInsensitiveDict


def make_response(
    request: requests.PreparedRequest, status: int, headers: Mapping[str, str], body: Any
) -> requests.Response:
    """The response a server would give `request`: `status`, `headers`, and `body` (bytes or a readable)."""
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(headers)
    response.raw = body if hasattr(body, "read") else io.BytesIO(body)
    response.url = request.url
    response.request = request
    return response


#: What a stand-in server answers: ``(status, headers, body)``, or an exception to raise as the transport.
Route = Union[Tuple[int, Mapping[str, str], Any], Exception]


def answer(request: requests.PreparedRequest, route: Route) -> requests.Response:
    """The response for `route`; an exception route is raised, as a failing connection would."""
    if isinstance(route, Exception):
        raise route
    status, headers, body = route
    return make_response(request, status, headers, body)
