"""`python -m smartcity` runs the command line."""

from smartcity.cli import app

app()
