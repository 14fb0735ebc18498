"""``python -m privacykit`` runs the CLI."""

from privacykit.cli import main

main()
