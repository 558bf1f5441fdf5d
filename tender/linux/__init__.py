"""Linux host facilities that are not KVM's: the seccomp sandbox."""
