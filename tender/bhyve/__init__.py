"""FreeBSD vmm(4) backend (BHYVE_SPEC.md).

Untested on real FreeBSD: everything here that is pure (request numbers,
struct layouts, the boot call list, exit decoding, VM lifetime, tap and
kqueue logic) is checked on Linux against the spec through a recording host
(tests/test_bhyve.py). Never imported on Linux at boot (tender.backend)."""
