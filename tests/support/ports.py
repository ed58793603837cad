"""Loopback ports for servers a test starts itself (the real-time intake, SMTP)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
