"""`clinreason` command line (typer + rich): the root app, one module per group of commands.

    common.py      consoles, exit codes, input loading, error reporting, index-build progress
    assess.py      assess, signoff, show, samples, protocols
    evaluation.py  eval, compare
    admin.py       serve, keys create|list|revoke, db upgrade|current
    mcp.py         mcp (the MCP server over stdio; imports the SDK only when run)
    kb.py          kb build|search|show|eval|misses|agreement

Importing this package loads typer, rich and light clinreason modules only; each command imports
the pipeline, index, store or server it needs when it runs.
"""

from __future__ import annotations

import typer

from clinreason.cli import admin, assess, evaluation, kb, mcp

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Clinical reasoning for pharmacist prescribing protocols (see `clinreason protocols`).")

# Registration order is the order `clinreason --help` lists them.
app.command("assess")(assess.assess_cmd)
app.command("signoff")(assess.signoff_cmd)
app.command("show")(assess.show_cmd)
app.command("serve")(admin.serve)
app.command("mcp")(mcp.mcp_cmd)
app.command("eval")(evaluation.eval_cmd)
app.command("compare")(evaluation.compare_cmd)
app.command("samples")(assess.samples_cmd)
app.command("protocols")(assess.protocols_cmd)
app.add_typer(kb.app, name="kb")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(admin.db_app, name="db")

__all__ = ["app"]
