"""Destinations: where orders go. Each implements `Destination` from `base`."""
