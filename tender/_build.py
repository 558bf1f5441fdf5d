"""cffi build script (API mode): compiles csrc/*.c into tender._vcpu."""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

_ROOT = Path(__file__).resolve().parent.parent
_CSRC = _ROOT / "csrc"

ffibuilder = FFI()
ffibuilder.cdef(
    "typedef unsigned long size_t;\n"
    + (_CSRC / "vl_stats.h").read_text()
    + (_CSRC / "vcpu_loop.h").read_text()
    # The backend-neutral twins (csrc/hypercalls.h) for a run loop that is
    # not C: the bhyve backend serves native hypercalls between its exits.
    + "int vl_serve(struct vl_vcpu *v, uint32_t nr, uint64_t gpa, struct vl_exit *e);\n"
)
ffibuilder.set_source(
    "tender._vcpu",
    '#include <stdint.h>\n#include <stddef.h>\n#include "vl_stats.h"\n#include "vcpu_loop.h"\n'
    '#include "hypercalls.h"\n',
    # Relative to the project root: setuptools refuses absolute source paths.
    sources=["csrc/vcpu_loop.c", "csrc/hypercalls.c", "csrc/ring.c", "csrc/sandbox.c"],
    include_dirs=["csrc"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-std=gnu11", "-pthread"],
    extra_link_args=["-pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
