"""Pick this host's backend by name, so the other one is never imported
(and tender.backend, the protocols, stays off the boot path)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tender import wx
from tender.config import VmConfig
from tender.errors import HostError

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from tender.backend import RunBackend


def open_backend(cfg: VmConfig, warn: Callable[[str], None],
                 platform: str | None = None) -> RunBackend:
    """A new, unopened backend for this host (`platform`: sys.platform's
    value, read at call time), set up for `cfg`'s hardening options
    (warnings where the host lacks one go to `warn`)."""
    platform = platform or sys.platform
    if platform.startswith("linux"):
        from tender.kvm.backend import KvmBackend

        return KvmBackend(cpuid=cfg.cpuid, msr_filter=cfg.msr_filter,
                          read_only_below=wx.LOW_MEMORY[1] if cfg.wx else 0, warn=warn)
    if platform.startswith("freebsd"):
        from tender.bhyve.vm import open_bhyve

        return open_bhyve()
    from tender.backend import no_hypervisor

    raise HostError(no_hypervisor() or f"no backend for this host ({platform})")


def ring_pays(platform: str | None = None) -> bool:
    """`--net-ring=auto`: offer the net ring unless this host's hypervisor is
    detected to be one where it costs more than it saves: a software KVM,
    whose guest instructions are dear (tender/kvm/assist.py). Other and
    unknown hosts get the ring, as with solo5-hvt (`platform`: as for
    open_backend)."""
    if not (platform or sys.platform).startswith("linux"):
        return True
    from tender.kvm.assist import Assist, probe

    return probe() is not Assist.SOFTWARE
