"""Loopback ports for what a caller starts beside anything else running."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port free now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
