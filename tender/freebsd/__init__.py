"""FreeBSD host facilities that are not vmm's: the Capsicum sandbox
(BHYVE_SPEC 9), the counterpart of tender/linux/'s seccomp.

Untested on real FreeBSD: the rights words, the ioctl allowlists and the
order of the calls are checked on Linux through a recording libc
(tests/test_capsicum.py). Never imported on Linux at boot."""
