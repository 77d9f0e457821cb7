"""Running the service: API `keys`, the store's `db` schema, and `serve`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from clinreason.cli.common import LEGACY_EXIT_CODES, err, out, reported, store
from clinreason.errors import InvalidInput, NotFound

keys_app = typer.Typer(no_args_is_help=True, help="API keys for the REST service (stored hashed).")
db_app = typer.Typer(no_args_is_help=True, help="The assessment store's schema (SQLite, or Postgres with CLINREASON_DATABASE_URL).")


@keys_app.command("create")
@reported()
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who the key belongs to (shown in the audit log and sign-offs).")],
    role: Annotated[str, typer.Option("--role", help="submitter | prescriber | admin")],
    site: Annotated[str | None, typer.Option(
        "--site", help="The site (pharmacy) the key belongs to, e.g. pharmacy-042; required for submitter and prescriber. "
                       "An admin without a site is global.")] = None,
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    if not name.strip():
        raise InvalidInput("--name must not be empty")
    try:
        key = store().create_key(name.strip(), role, site)  # type: ignore[arg-type]
    except ValueError as exc:  # the store owns the rules for roles and sites
        raise InvalidInput(str(exc)) from None
    where = f"site {site!r}" if site else "every site (global admin)"
    err.print(f"created a {role} key for {name!r} at {where}; store it now, it cannot be shown again:")
    sys.stdout.write(key + "\n")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, names, roles; never the secrets)."""
    table = Table(title="API keys")
    for col in ("key id", "name", "role", "site", "created", "revoked"):
        table.add_column(col)
    for k in store().list_keys():
        table.add_row(k["key_id"], k["name"], k["role"], k["site"] or "(global)", k["created_at"], "yes" if k["revoked"] else "no")
    out.print(table)


@keys_app.command("revoke")
@reported(exit_codes=LEGACY_EXIT_CODES)
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (the part after cr_).")]) -> None:
    """Revoke a key."""
    if not store().revoke_key(key_id):
        raise NotFound(f"no key {key_id!r}")
    out.print(f"revoked {key_id}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the store to the current schema in place (also done on `serve` and on first use)."""
    from clinreason.config import get_settings
    from clinreason.store import Store

    s = Store(get_settings(), upgrade=False)
    before, after = s.upgrade()
    out.print(f"store at revision {after}" + (" (already current)" if before == after else f" (was {before or 'empty'})"))


@db_app.command("current")
def db_current() -> None:
    """Show the store's schema revision without changing anything."""
    from clinreason.config import get_settings
    from clinreason.store import Store
    from clinreason.store.migrate import HEAD

    rev = Store(get_settings(), upgrade=False).revision()
    out.print(f"store at revision {rev or 'none (empty)'}; this release needs {HEAD}")
    if rev != HEAD:
        raise typer.Exit(1)


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    graceful_timeout: Annotated[int, typer.Option(help="Seconds to finish requests in flight on shutdown.")] = 30,
) -> None:
    """Run the REST API (uvicorn). SIGTERM drains requests in flight before exiting.

    Request heads (request line and headers) over CLINREASON_MAX_HEADER_BYTES are
    answered 431 as they arrive, before they are buffered or parsed."""
    import uvicorn

    from clinreason.api.server import uvicorn_options
    from clinreason.config import get_settings

    uvicorn.run("clinreason.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                timeout_graceful_shutdown=graceful_timeout, log_level="info",
                **uvicorn_options(get_settings().max_header_bytes))
