"""Command-line plumbing shared by the flows: options, failed runs, a temporary server."""
