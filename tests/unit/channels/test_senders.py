"""`channels.senders`: sender ids namespaced by channel, and the platform id of a reply's recipient."""
from __future__ import annotations

import pytest

from channels.senders import API, MESSENGER, NAMESPACES, TELEGRAM, WEB, namespaced, platform_id


def test_namespaced_ids() -> None:
    assert namespaced(TELEGRAM, "123") == "telegram:123"
    assert namespaced(API, "telegram:123") == "api:telegram:123"  # an API caller cannot reach Telegram's
    assert set(NAMESPACES) == {WEB, API, TELEGRAM, MESSENGER}
    with pytest.raises(ValueError):
        namespaced("rest", "x")


@pytest.mark.parametrize(
    "namespace, recipient, expected",
    [
        (TELEGRAM, "telegram:123", "123"),
        (TELEGRAM, "telegram:-1001234", "-1001234"),  # a group chat
        (TELEGRAM, "123", "123"),  # the channel's own replies use the bare chat id
        (TELEGRAM, "web:" + "a" * 32, None),
        (TELEGRAM, "api:123", None),
        (TELEGRAM, "messenger:123", None),
        (MESSENGER, "messenger:PSID_1", "PSID_1"),
        (MESSENGER, "telegram:123", None),
        (MESSENGER, "PSID_1", "PSID_1"),
    ],
)
def test_platform_id_of_a_recipient(namespace: str, recipient: str, expected) -> None:
    assert platform_id(namespace, recipient) == expected
