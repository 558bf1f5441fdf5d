# python examples/answer_ping.py: the guest pings 10.0.0.1 three times; Python,
# at the other end of a FramePipe, answers its ARP request and its echoes.
import threading

from tender import NetSpec, Outcome, Tender, VmConfig
from tender.devices import FramePipe, frames

HOST_MAC = bytes.fromhex("020000000001")
pipe = FramePipe()
tender = Tender(VmConfig(kernel="guests/build/net.hvt", mem=32 << 20,
                         args=(b"10.0.0.2", b"ping", b"10.0.0.1", b"3"),
                         nets=(NetSpec("service0", pipe=pipe),)))
ended: list[Outcome] = []
guest = threading.Thread(target=lambda: ended.append(tender.run()))
guest.start()
answered = 0
while guest.is_alive():
    frame = pipe.recv(timeout=0.2)
    if frame is None:
        continue
    f = frames.parse(frame)
    if f.arp_op == 1 and f.arp_target_ip == frames.ip4("10.0.0.1"):
        pipe.send(frames.arp_reply(frame, HOST_MAC))
    elif f.icmp_type == 8:
        pipe.send(frames.echo_reply(frame))
        answered += 1
guest.join()
assert ended and ended[0].exit_code == 0 and answered == 3
print(f"answered ARP and {answered} pings")
