"""`python -m clinreason.cli`."""

from clinreason.cli import app

app()
