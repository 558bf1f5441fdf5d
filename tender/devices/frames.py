"""Pure: build and parse the few Ethernet frames a test talks to a guest
with (ARP, IPv4 ICMP echo), for FramePipe users."""

from __future__ import annotations

import struct

from tender.record import record

BROADCAST = b"\xff" * 6
ETH_ARP = 0x0806
ETH_IP = 0x0800
_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IP = struct.Struct("!BBHHHBBH4s4s")
_ICMP = struct.Struct("!BBHHH")


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def arp_request(src_mac: bytes, src_ip: str, target_ip: str) -> bytes:
    return _ETH.pack(BROADCAST, src_mac, ETH_ARP) + _ARP.pack(
        1, ETH_IP, 6, 4, 1, src_mac, ip4(src_ip), bytes(6), ip4(target_ip))


def arp_reply(request: bytes, mac: bytes) -> bytes:
    """Answer an ARP request for its target IP with `mac`."""
    _, src, _ = _ETH.unpack_from(request)
    _, _, _, _, _, sha, spa, _, tpa = _ARP.unpack_from(request, _ETH.size)
    return _ETH.pack(src, mac, ETH_ARP) + _ARP.pack(1, ETH_IP, 6, 4, 2, mac, tpa, sha, spa)


def echo_request(src_mac: bytes, dst_mac: bytes, src_ip: str, dst_ip: str, ident: int,
                 seq: int, payload: bytes = b"pytender") -> bytes:
    return _ETH.pack(dst_mac, src_mac, ETH_IP) + _ip_icmp(
        ip4(src_ip), ip4(dst_ip), 8, ident, seq, payload)


def echo_reply(request: bytes) -> bytes:
    """Answer an ICMP echo request."""
    dst, src, _ = _ETH.unpack_from(request)
    ip = _IP.unpack_from(request, _ETH.size)
    hl = (ip[0] & 0xF) * 4
    _, _, _, ident, seq = _ICMP.unpack_from(request, _ETH.size + hl)
    payload = request[_ETH.size + hl + _ICMP.size :]
    return _ETH.pack(src, dst, ETH_IP) + _ip_icmp(ip[9], ip[8], 0, ident, seq, payload)


def _ip_icmp(src: bytes, dst: bytes, itype: int, ident: int, seq: int, payload: bytes) -> bytes:
    icmp = _ICMP.pack(itype, 0, 0, ident, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    hdr = _IP.pack(0x45, 0, _IP.size + len(icmp), 0, 0x4000, 64, 1, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + icmp


@record(frozen=True)
class Frame:
    """The fields of a frame a test looks at."""

    dst: bytes
    src: bytes
    ethertype: int
    arp_op: int | None = None           # 1 request, 2 reply
    arp_sender_ip: bytes | None = None
    arp_target_ip: bytes | None = None
    icmp_type: int | None = None        # 8 echo request, 0 echo reply
    icmp_seq: int | None = None
    icmp_payload: bytes | None = None


def parse(frame: bytes) -> Frame:
    dst, src, etype = _ETH.unpack_from(frame)
    if etype == ETH_ARP and len(frame) >= _ETH.size + _ARP.size:
        a = _ARP.unpack_from(frame, _ETH.size)
        return Frame(dst, src, etype, arp_op=a[4], arp_sender_ip=a[6], arp_target_ip=a[8])
    if etype == ETH_IP and len(frame) >= _ETH.size + _IP.size:
        ip = _IP.unpack_from(frame, _ETH.size)
        hl = (ip[0] & 0xF) * 4
        if ip[6] == 1 and len(frame) >= _ETH.size + hl + _ICMP.size:
            t, _, _, _, seq = _ICMP.unpack_from(frame, _ETH.size + hl)
            return Frame(dst, src, etype, icmp_type=t, icmp_seq=seq,
                         icmp_payload=frame[_ETH.size + hl + _ICMP.size :])
    return Frame(dst, src, etype)
