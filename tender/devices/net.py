"""A tap attached to a NET_BASIC manifest entry."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class NetDevice:
    name: str
    iface: str
    fd: int
    mtu: int = 1500
    mac: bytes = bytes(6)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
