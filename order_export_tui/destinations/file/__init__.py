"""The dry run: `destination` writes the exact requests a platform would receive, `connector`
declares it for the registry."""
