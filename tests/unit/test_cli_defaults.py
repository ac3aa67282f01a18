"""The environment `greenpipe` sets before anything runs, unless the user set it."""

from __future__ import annotations

from greenpipe import cli

KEY = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


def test_prefect_waits_long_enough_for_a_first_run_to_create_its_database(monkeypatch):
    monkeypatch.delenv(KEY, raising=False)
    cli._quiet_defaults()
    from prefect.settings import Settings

    # Prefect reads the setting under this name (its default is 20 s)
    assert Settings().server.ephemeral.startup_timeout_seconds == 90


def test_a_timeout_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv(KEY, "300")
    cli._quiet_defaults()
    from prefect.settings import Settings

    assert Settings().server.ephemeral.startup_timeout_seconds == 300
