"""The dry run: `destination` writes the exact requests a platform would receive, `readback`
reads the file back for verify, `connector` declares it for the registry."""
