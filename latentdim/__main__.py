"""``python -m latentdim`` runs the command line."""

from latentdim.cli import app

app(prog_name="latentdim")
