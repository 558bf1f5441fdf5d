"""Interceptors: a Python function that watches or answers one hypercall.

`Tender(config, intercept={Hypercall.BLOCK_WRITE: fn})` wraps the Python
handler of each intercepted hypercall (only those leave the native path).
`fn(call)` gets a `Call` (the hypercall, its 1-based count in this run, the
decoded arguments) and returns None (the normal handler runs, unless
`call.proceed()` already ran it) or the answer the guest gets instead.

A call whose struct or buffer lies outside guest memory never reaches `fn`:
the normal handler answers it (EINVAL or a guest fault), so an interceptor
cannot change how a malformed call ends. It still counts in `seq`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tender import abi
from tender.abi import Hypercall, Result
from tender.errors import InterceptError, Interrupted, TenderError
from tender.hypercalls.context import Context, Handler
from tender.hypercalls.halt import Halt, halt
from tender.memory import GuestMemory
from tender.usercode import UserCode

_U64 = (1 << 64) - 1


# --- the decoded argument structs, one per hypercall ------------------------
@dataclass(frozen=True)
class WalltimeArgs:
    pass


@dataclass(frozen=True)
class PutsArgs:
    data: bytes


@dataclass(frozen=True)
class PollArgs:
    timeout_ns: int


@dataclass(frozen=True)
class BlockWriteArgs:
    handle: int
    offset: int
    data: bytes


@dataclass(frozen=True)
class BlockReadArgs:
    handle: int
    offset: int
    len: int


@dataclass(frozen=True)
class NetWriteArgs:
    handle: int
    data: bytes


@dataclass(frozen=True)
class NetReadArgs:
    handle: int
    len: int


@dataclass(frozen=True)
class HaltArgs:
    status: int
    cookie: int


Args = (WalltimeArgs | PutsArgs | PollArgs | BlockWriteArgs | BlockReadArgs | NetWriteArgs
        | NetReadArgs | HaltArgs)


@dataclass(frozen=True)
class Call:
    """One hypercall as an interceptor sees it."""

    nr: Hypercall
    seq: int                    # 1-based count of this hypercall in this run
    args: Args
    _proceed: Callable[[], Any] = field(repr=False, compare=False)

    def proceed(self) -> Any:
        """Run the normal handler now (once) and return what the guest got:
        a Result (block/net), the ns (WALLTIME), (Result, ready_set) (POLL),
        the status (HALT), None (PUTS)."""
        return self._proceed()


Interceptor = Callable[[Call], Any]


# --- per hypercall: decode, check an answer, give it, read a result back ----
def _block_struct(mem: GuestMemory, gpa: int) -> tuple[int, int, int, int]:
    mem.check_write(gpa, abi.BLOCK.size)
    handle, offset, data, length, _ = mem.read_struct(abi.BLOCK, gpa)
    return handle, offset, data, length


def _net_struct(mem: GuestMemory, gpa: int) -> tuple[int, int, int]:
    mem.check_write(gpa, abi.NET.size)
    handle, data, length, _ = mem.read_struct(abi.NET, gpa)
    return handle, data, length


def _decode(nr: Hypercall, ctx: Context, gpa: int) -> Args:
    """Raises TenderError when the normal handler would refuse the call."""
    mem = ctx.mem
    if nr is Hypercall.WALLTIME:
        mem.check_write(gpa, abi.WALLTIME.size)
        return WalltimeArgs()
    if nr is Hypercall.PUTS:
        data, length = mem.read_struct(abi.PUTS, gpa)
        return PutsArgs(bytes(mem.checked(data, length)))
    if nr is Hypercall.POLL:
        mem.check_write(gpa, abi.POLL.size)
        return PollArgs(mem.read_struct(abi.POLL, gpa)[0])
    if nr in (Hypercall.BLOCK_WRITE, Hypercall.BLOCK_READ):
        handle, offset, data, length = _block_struct(mem, gpa)
        if nr is Hypercall.BLOCK_WRITE:
            return BlockWriteArgs(handle, offset, bytes(mem.checked(data, length)))
        mem.check_write(data, length)
        return BlockReadArgs(handle, offset, length)
    handle, data, length = _net_struct(mem, gpa)
    if nr is Hypercall.NET_WRITE:
        return NetWriteArgs(handle, bytes(mem.checked(data, length)))
    mem.check_write(data, length)
    return NetReadArgs(handle, length)


_WANTS = {
    Hypercall.WALLTIME: "None or an int of nanoseconds (0 to 2**64-1)",
    Hypercall.PUTS: "None or Result.OK (output dropped)",
    Hypercall.POLL: "None or (Result, ready_set) naming only attached NET handles",
    Hypercall.BLOCK_WRITE: "None or a Result",
    Hypercall.BLOCK_READ: "None, a Result, or bytes of exactly the requested length",
    Hypercall.NET_WRITE: "None or a Result",
    Hypercall.NET_READ: "None, a Result, or bytes no longer than the requested length",
    Hypercall.HALT: "None or an int exit status (-2**31 to 2**31-1)",
}


def _plain_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool | Result)


def _valid(nr: Hypercall, answer: object, args: Args, ctx: Context) -> bool:
    if nr is Hypercall.WALLTIME:
        return _plain_int(answer) and 0 <= answer <= _U64   # type: ignore[operator]
    if nr is Hypercall.PUTS:
        return answer is Result.OK
    if nr is Hypercall.POLL:
        if not (isinstance(answer, tuple) and len(answer) == 2):
            return False
        res, ready = answer
        nets = sum(1 << h for h in ctx.nets)
        return isinstance(res, Result) and _plain_int(ready) and ready & ~nets == 0
    if isinstance(answer, Result):
        return True
    if isinstance(answer, bytes) and isinstance(args, BlockReadArgs):
        return len(answer) == args.len
    if isinstance(answer, bytes) and isinstance(args, NetReadArgs):
        return len(answer) <= args.len
    return False


def _give(nr: Hypercall, answer: Any, ctx: Context, gpa: int) -> None:
    """Write a checked answer where the guest expects the handler's."""
    mem = ctx.mem
    if nr is Hypercall.WALLTIME:
        mem.write_struct(abi.WALLTIME, gpa, answer)
    elif nr is Hypercall.POLL:
        res, ready = answer
        timeout = mem.read_struct(abi.POLL, gpa)[0]
        # `ret` is the number of ready handles (spec 4); the Result is the
        # caller's statement that the wait succeeded, which POLL cannot carry.
        del res
        mem.write_struct(abi.POLL, gpa, timeout, ready, bin(ready).count("1"))
    elif nr in (Hypercall.BLOCK_WRITE, Hypercall.BLOCK_READ):
        _, _, data, length = _block_struct(mem, gpa)
        if isinstance(answer, bytes):
            mem.writable(data, length)[:] = answer
            answer = Result.OK
        abi.RET.pack_into(mem.writable(gpa + abi.BLOCK_RET_OFFSET, 4), 0, answer)
    elif nr in (Hypercall.NET_WRITE, Hypercall.NET_READ):
        handle, data, length = _net_struct(mem, gpa)
        if isinstance(answer, bytes):
            mem.writable(data, len(answer))[:] = answer
            length, answer = len(answer), Result.OK
        mem.write_struct(abi.NET, gpa, handle, data, length, answer)
    # PUTS: Result.OK means the text is dropped; nothing to write.


def _result(nr: Hypercall, ctx: Context, gpa: int) -> Any:
    """What the normal handler gave the guest."""
    mem = ctx.mem
    if nr is Hypercall.WALLTIME:
        return mem.read_struct(abi.WALLTIME, gpa)[0]
    if nr is Hypercall.POLL:
        return Result.OK, mem.read_struct(abi.POLL, gpa)[1]
    if nr in (Hypercall.BLOCK_WRITE, Hypercall.BLOCK_READ):
        return Result(mem.read_struct(abi.BLOCK, gpa)[4])
    if nr in (Hypercall.NET_WRITE, Hypercall.NET_READ):
        return Result(mem.read_struct(abi.NET, gpa)[3])
    return None


# --- the table and a run's use of it ------------------------------------------
def hypercall_key(key: object) -> Hypercall:
    """A Hypercall, its number, or its name (any case) -> Hypercall."""
    if isinstance(key, Hypercall):
        return key
    if _plain_int(key) and key in set(Hypercall):
        return Hypercall(key)   # type: ignore[arg-type]
    if isinstance(key, str) and key.upper() in Hypercall.__members__:
        return Hypercall[key.upper()]
    raise InterceptError(f"interceptor key {key!r} is not a hypercall "
                         f"(one of {', '.join(h.name for h in Hypercall)})")


def interceptors(table: Mapping[Any, Any]) -> dict[Hypercall, Interceptor]:
    """Check a user's `intercept` mapping: known keys, callable values."""
    if not isinstance(table, Mapping):
        raise InterceptError("intercept must be a mapping {Hypercall.NAME: function, ...}, "
                             f"not {type(table).__name__}")
    out: dict[Hypercall, Interceptor] = {}
    for key, fn in table.items():
        nr = hypercall_key(key)
        if not callable(fn):
            raise InterceptError(f"interceptor for {nr.name} is not callable: {fn!r}")
        if nr in out:
            raise InterceptError(f"two interceptors for {nr.name}")
        out[nr] = fn
    return out


def _name(fn: object) -> str:
    qual = getattr(fn, "__qualname__", None)
    mod = getattr(fn, "__module__", None)
    if isinstance(qual, str):
        return f"{mod}.{qual}" if isinstance(mod, str) and mod != "__main__" else qual
    return repr(fn)


class InterceptRun:
    """One run's interceptors and their counters."""

    def __init__(self, table: Mapping[Hypercall, Interceptor],
                 user: UserCode | None = None) -> None:
        self._table = dict(table)
        self._user = UserCode() if user is None else user
        self._seq = dict.fromkeys(Hypercall, 0)

    @property
    def intercepted(self) -> frozenset[Hypercall]:
        return frozenset(self._table)

    def wrap(self, handlers: dict[int, Handler]) -> dict[int, Handler]:
        return {nr: self._wrap_one(Hypercall(nr), h) if nr in self._table else h
                for nr, h in handlers.items()}

    def _wrap_one(self, nr: Hypercall, handler: Handler) -> Handler:
        fn = self._table[nr]

        def intercepted(ctx: Context, gpa: int) -> None:
            self._seq[nr] += 1
            try:
                args = _decode(nr, ctx, gpa)
            except TenderError:
                handler(ctx, gpa)       # malformed: the normal answer or fault
                return
            ran: list[Any] = []
            failed: list[BaseException] = []

            def proceed() -> Any:
                if not ran:
                    try:
                        with self._user.inside(False):
                            handler(ctx, gpa)
                    except BaseException as exc:
                        failed.append(exc)
                        raise
                    ran.append(_result(nr, ctx, gpa))
                self._user.check()      # a signal during the handler
                return ran[0]

            answer = _ask(fn, Call(nr, self._seq[nr], args, proceed), failed, self._user)
            if answer is None:
                if not ran:
                    handler(ctx, gpa)
                return
            if not _valid(nr, answer, args, ctx):
                raise _bad_answer(nr, fn, answer)
            _give(nr, answer, ctx, gpa)

        return intercepted

    def halt(self, mem: GuestMemory, gpa: int) -> Halt:
        h = halt(mem, gpa)
        fn = self._table.get(Hypercall.HALT)
        if fn is None:
            return h
        self._seq[Hypercall.HALT] += 1
        args = HaltArgs(h.status, h.cookie)
        call = Call(Hypercall.HALT, self._seq[Hypercall.HALT], args, lambda: h.status)
        answer = _ask(fn, call, [], self._user)
        if answer is None:
            return h
        if not (_plain_int(answer) and -(1 << 31) <= answer < (1 << 31)):
            raise _bad_answer(Hypercall.HALT, fn, answer)
        return Halt(answer, h.cookie, h.trap_frame)


def _ask(fn: Interceptor, call: Call, failed: list[BaseException], user: UserCode) -> Any:
    try:
        with user.inside():
            return fn(call)
    except BaseException as exc:    # SystemExit too: it must not end the run as a success
        if isinstance(exc, Interrupted) or any(exc is f for f in failed):
            # The normal handler's own error, through call.proceed(): the
            # run ends as it would have without an interceptor.
            raise
        raise _raised(call.nr, fn, exc) from exc


def _raised(nr: Hypercall, fn: Interceptor, exc: BaseException) -> InterceptError:
    return InterceptError(f"{nr.name} interceptor {_name(fn)} raised "
                          f"{type(exc).__name__}: {exc}")


def _bad_answer(nr: Hypercall, fn: Interceptor, answer: object) -> InterceptError:
    text = repr(answer)
    if len(text) > 60:
        text = text[:57] + "..."
    return InterceptError(f"{nr.name} interceptor {_name(fn)} returned {text}; "
                          f"it must return {_WANTS[nr]}")


__all__ = [
    "BlockReadArgs", "BlockWriteArgs", "Call", "HaltArgs", "InterceptRun", "Interceptor",
    "NetReadArgs", "NetWriteArgs", "PollArgs", "PutsArgs", "WalltimeArgs", "hypercall_key",
    "interceptors",
]
