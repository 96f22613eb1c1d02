"""Rendering roles as nats-server configuration, with a password per role.

    authorization { users = [ {user: "config", password: "...", permissions: {...}}, ... ] }

nats-server's configuration format accepts JSON values, so every subject is
written as a JSON string (subjects with `$` and `>` need quoting).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from tenantplane.services.security.roles import Role

# Replies a responding role may send to one request.
MAX_RESPONSES = 64


@dataclass(frozen=True)
class Credentials:
    """A password per role name."""

    passwords: dict[str, str]

    @classmethod
    def new(cls, roles: list[Role]) -> Credentials:
        """Fresh random passwords for `roles`."""
        return cls({role.name: secrets.token_urlsafe(24) for role in roles})

    @classmethod
    def load(cls, path: Path) -> Credentials:
        """Passwords saved by `save`."""
        return cls(dict(json.loads(path.read_text())))

    def save(self, path: Path) -> None:
        """Write the passwords, readable by this user only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(self.passwords, file, indent=2)

    @classmethod
    def kept(cls, path: Path, roles: list[Role]) -> Credentials:
        """The passwords saved in `path`, with new ones for roles that have none, saved."""
        known = cls.load(path) if path.exists() else cls({})
        kept = known.with_roles(roles)
        kept.save(path)
        return kept

    def with_roles(self, roles: list[Role]) -> Credentials:
        """These passwords, plus new ones for roles that have none."""
        fresh = Credentials.new([r for r in roles if r.name not in self.passwords])
        return Credentials({**self.passwords, **fresh.passwords})


def authorization(roles: list[Role], credentials: Credentials) -> str:
    """The `authorization` block of nats-server's configuration for `roles`."""
    users = [_user(role, credentials.passwords[role.name]) for role in roles]
    return "authorization {\n  users = [\n" + ",\n".join(users) + "\n  ]\n}\n"


def _user(role: Role, password: str) -> str:
    permissions: dict[str, object] = {
        "publish": {"allow": list(role.publish)} if role.publish else {"deny": [">"]},
        "subscribe": {"allow": list(role.subscribe)},
    }
    if role.responds:
        # `true` would allow one reply per request; a request every projector hears
        # (`<root>.ctl._all.status`) gets one from each projector of a connection.
        permissions["allow_responses"] = {"max": MAX_RESPONSES}
    entry = {"user": role.name, "password": password, "permissions": permissions}
    return "    " + json.dumps(entry)
