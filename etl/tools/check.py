"""`aai-etl check`: are the settings, the database and every account's key good, without starting a sync."""

from __future__ import annotations

from dataclasses import dataclass, replace

from etl.api.client import ApiClient
from etl.config import Settings
from etl.errors import EXIT_CONFIG, ConfigError, EtlError, RetriesExhausted
from etl.store import migrate
from etl.store.engine import connect, make_engine, masked

# A check should answer in seconds: one retry, a short budget, whatever the sync's settings allow.
CHECK_RETRIES, CHECK_BUDGET_SECONDS = 1, 20.0


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str
    exit_code: int = 0  # when it fails: 2 for a configuration mistake, 1 for anything else

    def render(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.what}: {self.detail}"


def settings_failed(error: ConfigError) -> Check:
    return Check("settings", False, str(error), EXIT_CONFIG)


def run(settings: Settings, source: str | None) -> list[Check]:
    """Every check, in order; each failure is caught and reported, so one bad part does not hide the others."""
    accounts = ", ".join(account.name for account in settings.accounts)
    checks = [Check("settings", True, f"{source or 'defaults and environment'}; accounts: {accounts}")]
    checks.append(_database(settings))
    quick = replace(settings, max_retries=min(settings.max_retries, CHECK_RETRIES), retry_budget_seconds=CHECK_BUDGET_SECONDS)
    checks.extend(_account(quick, account) for account in settings.accounts)
    return checks


def exit_code(checks: list[Check]) -> int:
    return max((check.exit_code for check in checks if not check.ok), default=0)


def _database(settings: Settings) -> Check:
    try:
        engine = make_engine(settings.database_url, schema=settings.database_schema, connect_timeout=settings.database_connect_timeout)
        with connect(engine) as conn:
            current, head = migrate.current_revision(conn), migrate.head_revision()
            migrate.refuse_unknown(current)
        engine.dispose()
    except EtlError as exc:
        return Check("database", False, str(exc), exc.exit_code)
    if current == head:
        schema = f"schema {current} (up to date)"
    else:
        schema = f"schema {current or 'not created yet'}; the next sync upgrades it to {head}"
    return Check("database", True, f"{masked(settings.database_url)} reachable, {schema}")


def _account(settings: Settings, account) -> Check:
    what = f"account '{account.name}'"
    try:
        with ApiClient.for_account(settings, account) as client:
            client.list_transcripts(limit=1)
    except RetriesExhausted as exc:
        # What the check asked, what it met and what to do: a sync's "run again later" is not about a check.
        return Check(
            what, False, f"GET {account.base_url}/v2/transcript failed: {exc.reason}; check the network and the "
            "base_url setting, then run `aai-etl check` again", exc.exit_code,
        )
    except EtlError as exc:
        return Check(what, False, str(exc), exc.exit_code)
    return Check(what, True, f"the key in {account.api_key_env} is accepted by {account.base_url}")
