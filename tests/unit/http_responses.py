"""A `requests.Response` built in memory, for transports that stand in for a remote server in unit tests."""
from __future__ import annotations

import io
from typing import Any, Mapping

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
