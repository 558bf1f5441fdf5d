# python examples/intercept_library.py: the third block write fails; the
# guest reports it and the disk shows where the writes stopped.
from tender import BlockSpec, Call, Hypercall, Result, Tender, VmConfig
from tender.devices import MemoryDisk

offsets: list[int] = []


def third_write_fails(call: Call) -> Result | None:
    offsets.append(call.args.offset)            # call.args: BlockWriteArgs
    return Result.EUNSPEC if call.seq == 3 else None


disk = MemoryDisk(8 * 512)
out = Tender(VmConfig(kernel="guests/build/blk.hvt", args=(b"write", b"1"), mem=32 << 20,
                      blocks=(BlockSpec("storage", disk=disk),)),
             intercept={Hypercall.BLOCK_WRITE: third_write_fails}).run()
assert out.exit_code == 1 and offsets == [0, 512, 1024]
assert bytes(disk.data[1024:]) == bytes(6 * 512)    # nothing from the third write on
