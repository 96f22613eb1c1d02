"""Domains named by reference, `module:ATTR`, as settings and the CLI name them."""

from __future__ import annotations

import importlib

from tenantplane.contracts.domains import Domain


def load_domain(reference: str) -> Domain:
    """The `Domain` that `reference` (`module:ATTR`, e.g. `billing.events:BILLING`) names.

    Raises:
        ValueError: the reference is malformed, cannot be imported, or is not a `Domain`;
            the message names the reference and what is wrong in one line.
    """
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"domain {reference!r}: expected module:ATTR, e.g. billing.events:BILLING")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except ImportError as e:
        raise ValueError(f"domain {reference!r}: cannot import {module_name}: {e}") from e
    except AttributeError as e:
        raise ValueError(f"domain {reference!r}: {module_name} has no {attribute}") from e
    if not isinstance(found, Domain):
        raise ValueError(f"domain {reference!r} is not a Domain: {repr(found)[:80]}")
    return found
