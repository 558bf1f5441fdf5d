"""cffi build script (API mode): compiles csrc/*.c into tender._vcpu.

The cdef is the backend-neutral interface (vl_stats.h, vcpu_loop.h), the
KVM loop's part (vl_kvm.h) and what Python reads of <linux/kvm.h>
(kvm.cdef): its `...` are filled in by the compiler from the kernel header,
so no KVM number or layout is written by hand in Python."""

from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

_ROOT = Path(__file__).resolve().parent.parent
_CSRC = _ROOT / "csrc"

# Linux: the KVM loop's part and <linux/kvm.h>; elsewhere (FreeBSD) the
# extension holds only the backend-neutral C and no KVM fact.
_LINUX = sys.platform.startswith("linux")
CDEF_FILES = ("vl_stats.h", "vcpu_loop.h", *(("vl_kvm.h", "kvm.cdef") if _LINUX else ()))

ffibuilder = FFI()
ffibuilder.cdef(
    "typedef unsigned long size_t;\n"
    + "".join((_CSRC / name).read_text() for name in CDEF_FILES)
    # The backend-neutral twins (csrc/hypercalls.h) for a run loop that is
    # not C: the bhyve backend serves native hypercalls between its exits.
    + "int vl_serve(struct vl_vcpu *v, uint32_t nr, uint64_t gpa, struct vl_exit *e);\n"
)
ffibuilder.set_source(
    "tender._vcpu",
    "#include <stdint.h>\n#include <stddef.h>\n"
    + ("#include <linux/kvm.h>\n" if _LINUX else "")
    + '#include "vl_stats.h"\n#include "vcpu_loop.h"\n#include "vl_kvm.h"\n'
    '#include "hypercalls.h"\n'
    # kvm_run's exit union is anonymous: cffi can only be given an offset.
    + ("#define VK_RUN_DEBUG_ARCH offsetof(struct kvm_run, debug.arch)\n" if _LINUX else ""),
    # Relative to the project root: setuptools refuses absolute source paths.
    sources=["csrc/vcpu_loop.c", "csrc/hypercalls.c", "csrc/ring.c", "csrc/sandbox.c"],
    include_dirs=["csrc"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-std=gnu11", "-pthread"],
    extra_link_args=["-pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
