# pytender run --script=examples/fail_third_write.py --block:storage=disk.img \
#     guests/build/blk.hvt write 1
from tender import Call, Hypercall, Result


def third_write_fails(call: Call) -> Result | None:
    return Result.EUNSPEC if call.seq == 3 else None    # None: the normal write


intercept = {Hypercall.BLOCK_WRITE: third_write_fails}
