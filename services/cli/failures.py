"""How tenantctl fails: one line on stderr and the documented exit code, never a traceback.

Exit codes: 0 ok, 1 refused by the system (a named error), 2 bad usage,
3 unavailable (NATS, Redis or the database could not be reached).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenantplane.services.runtime.errors import Unavailable

EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3

# How to point tenantctl at a server it could not reach, by `Unavailable.server`.
_POINT_AT = {
    "nats": "point tenantctl at NATS with --nats-url or TENANTPLANE_NATS_URL",
    "redis": "point tenantctl at Redis with --redis-url or TENANTPLANE_REDIS_URL",
    "database": (
        "point tenantctl at the database with TENANTPLANE_DATABASE_URL, "
        "or at a local system with --data-dir"
    ),
}


def report(error: BaseException) -> int | None:
    """Print `error` as one error line and return its exit code; None for a bug."""
    # Imported here: the contracts, pydantic, and the NATS and Redis clients, which
    # `--help` never needs.
    from pydantic import ValidationError

    from tenantplane.contracts.errors import ContractError, describe
    from tenantplane.services.cli.output import print_error
    from tenantplane.services.runtime.errors import InvalidInput, TenantplaneError
    from tenantplane.services.runtime.transient import unavailable_from

    outage = unavailable_from(error)
    if outage is not None:
        print_error(_unavailable(outage))
        return EXIT_UNAVAILABLE
    if isinstance(error, TenantplaneError):
        print_error(f"{error.code.value}: {error.message}")
        return EXIT_USAGE if isinstance(error, InvalidInput) else EXIT_REFUSED
    if isinstance(error, ValidationError):
        print_error(describe(error))
        return EXIT_USAGE
    if isinstance(error, ContractError | ValueError):
        print_error(str(error))
        return EXIT_USAGE
    if isinstance(error, OSError):
        print_error(f"unavailable: {error}")
        return EXIT_UNAVAILABLE
    return None


def _unavailable(outage: Unavailable) -> str:
    hint = _POINT_AT.get(outage.server or "")
    line = f"{outage.code.value}: {outage.message}"
    return f"{line.rstrip('.')}; {hint}" if hint else line
