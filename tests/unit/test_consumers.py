"""What a JetStream delivery becomes before decoding."""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.msg import Msg

from tenantplane.services.runtime.consumers import RawMessage, to_raw
from tenantplane.services.runtime.errors import EventLogUnavailable

STORED_NS = 1_764_039_713_212_837_000


def delivery(reply: str, headers: dict[str, str] | None = None) -> Any:
    return Msg(_client=None, subject="tp.evt.acme.config", reply=reply, data=b"{}", headers=headers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reply",
    [
        f"$JS.ACK.tp-control.c1.1.52341.9.{STORED_NS}.47658",
        f"$JS.ACK.hub.a1b2c3.tp-control.c1.1.52341.9.{STORED_NS}.47658.r4nd0m",
    ],
)
def test_a_delivery_becomes_a_raw_message_from_its_reply_subject(reply: str) -> None:
    # Given a delivery, without and with a JetStream domain in its reply subject
    msg = delivery(reply, {"Nats-Msg-Id": "e1"})
    # When it is read, with and without its headers
    raw, bare = to_raw(msg), to_raw(msg, headers=False)
    # Then every field is where the named tuple says
    expected = RawMessage(
        seq=52341, subject="tp.evt.acme.config", data=b"{}", headers={"Nats-Msg-Id": "e1"},
        num_pending=47658, stored_at=STORED_NS / 1e9,
    )  # fmt: skip
    assert (raw, type(raw)) == (expected, RawMessage)
    assert (raw.seq, raw.num_pending, raw.stored_at) == (52341, 47658, STORED_NS / 1e9)
    assert bare == expected._replace(headers={})


def test_a_message_that_is_no_jetstream_delivery_is_refused() -> None:
    with pytest.raises(EventLogUnavailable, match="not a JetStream delivery"):
        to_raw(delivery("_INBOX.abc"))
