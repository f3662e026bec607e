"""`channels.rest.settings`: credentials.yml keys checked at start, naming the key."""
from __future__ import annotations

from typing import Any, Dict

import pytest
from rasa.shared.exceptions import RasaException

from channels.rest import MultimodalRestInput


@pytest.mark.parametrize(
    "credentials",
    [
        {"token": "abc"},  # unknown key (a secret must not be written here)
        {"token_env": "not a variable name"},
        {"max_body_bytes": "lots"},
        {"upload_rate_per_minute": -1},
        {"upload_burst": 3},  # less than max_attachments
        {"address_burst": 5},
        {"address_rate_per_minute": "fast"},
        {"frame_ancestors": "*; script-src *"},
    ],
)
def test_bad_credentials_fail_early_naming_the_key(credentials: Dict[str, Any]) -> None:
    with pytest.raises(RasaException) as caught:
        MultimodalRestInput.from_credentials(credentials)
    assert next(iter(credentials)) in str(caught.value)

