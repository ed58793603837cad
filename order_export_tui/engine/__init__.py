"""The export engine: knows nothing of the screen; driven through `ExportEngine`."""
