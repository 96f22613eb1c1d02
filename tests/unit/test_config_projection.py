"""The config projection's writes: what each config change stores."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tenantplane.contracts import Envelope, Keys, Subjects
from tenantplane.contracts.config import ConfigReplaced, ConfigValuesSet, SealedValue
from tenantplane.contracts.values import INT_MAX, INT_MIN
from tenantplane.services.config.projection import ConfigProjection
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.runtime.stores.redis_ops import compact

config_keys = st.from_regex(r"[a-z][a-z0-9_.-]{0,6}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(INT_MIN, INT_MAX) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
sealed_values = st.builds(
    SealedValue,
    key_id=st.text(min_size=1, max_size=8),
    ciphertext=st.text(min_size=1, max_size=12),
)
PROJECTION = ConfigProjection(Subjects(), Keys("tp"))


def stored_fields(data: ConfigValuesSet | ConfigReplaced) -> dict[Any, Any]:
    """The config hash's fields the event's writes set, folded as a commit sends them."""
    event = StoredEvent(7, "tp.evt.acme.config", Envelope.wrap(data, tenant_id="acme", actor="t"))
    fields: dict[Any, Any] = {}
    for command, args in compact(PROJECTION.apply(event)):
        if command == "TP.OWNSET" and args[0] == PROJECTION.keys.tenant_config("acme"):
            fields.update(zip(args[2::2], args[3::2], strict=True))
    return fields


@given(
    st.dictionaries(config_keys, json_values, max_size=5),
    st.dictionaries(config_keys, sealed_values, max_size=3),
    st.sampled_from([ConfigValuesSet, ConfigReplaced]),
)
def test_a_change_stores_each_values_json_and_each_secret_sealed_the_secret_last(
    values: dict[str, Any],
    secrets: dict[str, SealedValue],
    event: type[ConfigValuesSet] | type[ConfigReplaced],
) -> None:
    # Given a change of values and secrets (a key may be in both)
    data = event(values=values, secrets=secrets)
    # When the projection applies it
    fields = stored_fields(data)
    # Then each value is stored as its JSON, each secret tagged as sealed, and a key in
    # both holds the secret
    sealed = {k: orjson.dumps({"$sealed": s.model_dump()}) for k, s in secrets.items()}
    assert fields == {**{k: orjson.dumps(v) for k, v in values.items()}, **sealed}
