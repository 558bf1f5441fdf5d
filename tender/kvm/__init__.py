"""Linux KVM backend: one wrapper type per fd kind (system, VM, vCPU)."""

from tender.kvm.system import Kvm
from tender.kvm.vcpu import VcpuFd
from tender.kvm.vmfd import VmFd

__all__ = ["Kvm", "VcpuFd", "VmFd"]
