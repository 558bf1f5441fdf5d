"""block: BLOCK_WRITE / BLOCK_READ, with a block device attached."""

from tender import abi
from tender.config import BlockSpec, VmConfig
from tender.errors import UsageError
from tender.hypercalls.block import block_read, block_write
from tender.modules.hooks import Assembly, Booted, declared_handle, loading
from tender.modules.options import (
    ArgState,
    Call,
    Match,
    Module,
    Option,
    TraceFields,
    When,
    declared,
    invalid,
    name_pattern,
)

_FIELDS = TraceFields(abi.BLOCK, ("handle", "offset", "data", "len", "ret"), ("ret",))


def _block(st: ArgState, arg: str, m: Match) -> None:
    declared(st, m[1], abi.DeviceType.BLOCK_BASIC, arg)
    st.blocks[m[1]] = BlockSpec(m[1], m[2])
    st.order[m[1]] = None


def _sector_size(st: ArgState, arg: str, m: Match) -> None:
    size = int(m[2]) if m[2].isascii() and m[2].isdigit() else -1
    if not abi.valid_block_size(size):
        raise invalid(arg, "Block size must be a multiple of 2 greater than or equal 512")
    declared(st, m[1], abi.DeviceType.BLOCK_BASIC, arg)
    st.sectors[m[1]] = size


def _specs(cfg: VmConfig) -> tuple[BlockSpec, ...]:
    return cfg.blocks


def _attach(asm: Assembly, spec: BlockSpec) -> None:
    # The device module loads only for a run that has a block device.
    with loading("the block device module"):
        from tender.devices.block import BlockDevice, open_disk

    handle = declared_handle(asm.manifest, spec.name, abi.DeviceType.BLOCK_BASIC)
    if not abi.valid_block_size(spec.block_size):
        raise UsageError("Block size must be a multiple of 2 greater than or equal 512")
    if spec.disk is not None:
        dev = open_disk(spec.name, spec.disk)
    else:
        assert spec.path is not None
        dev = BlockDevice.open(spec.name, spec.path)
        dev.block_size = spec.block_size
    asm.closers.append(dev.close)
    asm.add("block", handle, dev)


def _setup(asm: Assembly, _vm: Booted) -> None:
    for handle, dev in asm.of("block").items():
        dev.check_geometry()
        asm.manifest = asm.manifest.replace(
            handle, asm.manifest.entries[handle].block(dev.capacity, dev.block_size, dev.fd)
        )


MODULE = Module(
    name="block",
    usage=(
        "    --block:NAME=PATH (attach block device/file at PATH as block storage NAME)",
        "    [ --block-sector-size:NAME=SECTORSIZE ] (sector size of block storage NAME, "
        "default 512)",
    ),
    options=(
        Option(name_pattern("block", r"\S{1,4096}"), _block),
        Option(name_pattern("block-sector-size", r"\S+"), _sector_size),
    ),
    calls=(
        Call(abi.Hypercall.BLOCK_WRITE, block_write, True, _FIELDS),
        Call(abi.Hypercall.BLOCK_READ, block_read, True, _FIELDS),
    ),
    when=When.BLOCK,
    devices=_specs,
    attach=_attach,
    setup=_setup,
)
