"""FreeBSD tap attach (BHYVE_SPEC 8.1). Plain BSD, not vmm: it lives with
the other host devices (tender/devices/bsdtap.py); a bhyve `Host` is a
`TapOps`, so the backend's recording host serves it in tests."""

from __future__ import annotations

from tender.devices.bsdtap import IFNAMSIZ, Tap, attach, interface_names, mtu_request

__all__ = ["IFNAMSIZ", "Tap", "attach", "interface_names", "mtu_request"]
