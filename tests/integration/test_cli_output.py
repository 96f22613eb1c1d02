"""tenantctl prints data and error text as written: brackets are not style markup."""

from __future__ import annotations

import asyncio

import pytest

from tenantplane.services.config.schema import POOL_NAME
from tenantplane.services.runtime.settings import Settings
from tests.support.cli import tenantctl

pytestmark = pytest.mark.integration


async def test_a_refusal_naming_a_pattern_prints_the_pattern_literally(
    settings: Settings, service: None
) -> None:
    # Given a tenant
    created = await asyncio.to_thread(tenantctl, settings, "tenant", "create", "acme")
    assert created.returncode == 0, created.stderr
    # When the config service refuses a pool name that breaks the pool-name pattern
    refused = await asyncio.to_thread(
        tenantctl, settings, "config", "set", "acme", "jobs.pool=Bad Pool!"
    )
    # Then the error line shows the whole pattern, brackets and all
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(
        f"error: invalid_config_value: jobs.pool: 'Bad Pool!' does not match {POOL_NAME} "
    )


async def test_a_usage_error_naming_a_pattern_prints_it_literally(settings: Settings) -> None:
    refused = await asyncio.to_thread(tenantctl, settings, "config", "set", "acme", "Bad Key=1")
    assert refused.returncode == 2
    assert "'^[a-z0-9][a-z0-9_.-]{0,127}$'" in refused.stderr


async def test_a_value_with_brackets_shows_literally_in_a_table(
    settings: Settings, service: None
) -> None:
    # Given a config value that looks like rich markup
    value = "[bold]hi[/bold] [a-z]{0,3}"
    created = await asyncio.to_thread(tenantctl, settings, "tenant", "create", "acme")
    assert created.returncode == 0, created.stderr
    done = await asyncio.to_thread(
        tenantctl, settings, "config", "set", "acme", f"motd={value}", "--wait"
    )
    assert done.returncode == 0, done.stderr
    # When it is shown as a table
    shown = await asyncio.to_thread(tenantctl, settings, "config", "get", "acme")
    # Then it reads exactly as set
    assert shown.returncode == 0, shown.stderr
    assert value in shown.stdout
