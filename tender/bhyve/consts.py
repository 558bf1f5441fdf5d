"""vmm(4) enums (BHYVE_SPEC 5)."""

from __future__ import annotations

from enum import IntEnum


class Reg(IntEnum):
    """enum vm_reg_name (amd64); prefix VM_REG_GUEST_ dropped."""

    RAX = 0
    RBX = 1
    RCX = 2
    RDX = 3
    RSI = 4
    RDI = 5
    RBP = 6
    R8 = 7
    R9 = 8
    R10 = 9
    R11 = 10
    R12 = 11
    R13 = 12
    R14 = 13
    R15 = 14
    CR0 = 15
    CR3 = 16
    CR4 = 17
    DR7 = 18
    RSP = 19
    RIP = 20
    RFLAGS = 21
    ES = 22
    CS = 23
    SS = 24
    DS = 25
    FS = 26
    GS = 27
    LDTR = 28
    TR = 29
    IDTR = 30
    GDTR = 31
    EFER = 32
    CR2 = 33
    FS_BASE = 45
    GS_BASE = 46
    KGS_BASE = 47
    TPR = 48
    LAST = 49


class ExitCode(IntEnum):
    """enum vm_exitcode (14; numbering kept stable)."""

    INOUT = 0
    VMX = 1
    BOGUS = 2
    RDMSR = 3
    WRMSR = 4
    HLT = 5
    MTRAP = 6
    PAUSE = 7
    PAGING = 8
    INST_EMUL = 9
    SPINUP_AP = 10
    DEPRECATED1 = 11
    RENDEZVOUS = 12
    IOAPIC_EOI = 13
    SUSPENDED = 14
    INOUT_STR = 15
    TASK_SWITCH = 16
    MONITOR = 17
    MWAIT = 18
    SVM = 19
    REQIDLE = 20
    DEBUG = 21
    VMINSN = 22
    BPT = 23
    IPI = 24
    DB = 25


class Cap(IntEnum):
    HALT_EXIT = 0
    MTRAP_EXIT = 1
    PAUSE_EXIT = 2
    UNRESTRICTED_GUEST = 3


class SuspendHow(IntEnum):
    NONE = 0
    RESET = 1
    POWEROFF = 2
    HALT = 3
    TRIPLEFAULT = 4
    DESTROY = 5


VM_SYSMEM = 0
PROT_ALL = 7                       # PROT_READ | PROT_WRITE | PROT_EXEC, guest side
VMMCTL_CREATE_DESTROY_ON_CLOSE = 0x1
VM_MEMMAP_F_WIRED = 1
