"""--metrics-port: Prometheus /metrics of the running tender (tender/metrics.py)."""

from tender.errors import TenderError
from tender.modules.options import ArgState, Match, Module, Option

_PORT = r"--metrics-port=(\d{1,5})"


def _port(st: ArgState, arg: str, _m: Match) -> None:
    import re

    m = re.fullmatch(_PORT, arg)
    if m is None or int(m[1]) > 65535:
        raise TenderError("Malformed argument to --metrics-port")
    st.config["metrics_port"] = int(m[1])


MODULE = Module(
    name="metrics",
    usage=("    [ --metrics-port=PORT ] (serve Prometheus /metrics on 127.0.0.1:PORT)",),
    options=(Option("(?s)--metrics-port=(.*)", _port),),
    compiled_in=False,
)
