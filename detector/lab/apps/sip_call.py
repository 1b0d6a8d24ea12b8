"""One SIP call over UDP with an RTP stream: the caller (uac) and the callee (uas), RFC 3261/3550 shaped.

uas: python -m detector.lab.apps.sip_call uas IP SIP_PORT RTP_PORT
uac: python -m detector.lab.apps.sip_call uac SERVER_IP SIP_PORT LOCAL_IP SECONDS SEED
The callee echoes the caller's RTP packets (like an echo test number); the caller counts echoes as its proof.
"""

from __future__ import annotations

import random
import re
import socket
import struct
import sys
import time


def sdp(ip: str, port: int) -> str:
    return (f"v=0\r\no=lab 1 1 IN IP4 {ip}\r\ns=call\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n")


def header(msg: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*)$", msg, re.M | re.I)
    return m.group(1).strip() if m else ""


def uas(ip: str, sip_port: int, rtp_port: int) -> None:
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind((ip, sip_port))
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind((ip, rtp_port))
    rtp.setblocking(False)
    print("listening", flush=True)
    sip.settimeout(0.005)
    while True:
        try:
            data, peer = sip.recvfrom(65535)
        except socket.timeout:
            data = None
        if data:
            msg = data.decode(errors="replace")
            method = msg.split(" ", 1)[0]
            common = "\r\n".join(f"{h}: {header(msg, h)}" for h in ("Via", "From", "Call-ID", "CSeq")) + "\r\n"
            to = header(msg, "To") + ";tag=uas" + str(sip_port)
            if method == "INVITE":
                sip.sendto(f"SIP/2.0 100 Trying\r\n{common}To: {header(msg, 'To')}\r\nContent-Length: 0\r\n\r\n".encode(), peer)
                sip.sendto(f"SIP/2.0 180 Ringing\r\n{common}To: {to}\r\nContent-Length: 0\r\n\r\n".encode(), peer)
                body = sdp(ip, rtp_port)
                sip.sendto((f"SIP/2.0 200 OK\r\n{common}To: {to}\r\nContact: <sip:echo@{ip}:{sip_port}>\r\n"
                            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode(), peer)
            elif method in ("BYE", "OPTIONS"):
                sip.sendto(f"SIP/2.0 200 OK\r\n{common}To: {to}\r\nContent-Length: 0\r\n\r\n".encode(), peer)
        while True:
            try:
                pkt, rpeer = rtp.recvfrom(2048)
            except BlockingIOError:
                break
            rtp.sendto(pkt, rpeer)


def uac(server: str, sip_port: int, local_ip: str, seconds: float, seed: int) -> int:
    rng = random.Random(seed)
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind((local_ip, 5060 if rng.random() < 0.5 else 0))
    lport = sip.getsockname()[1]
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp_port = rng.randrange(16384, 32767, 2)
    rtp.bind((local_ip, rtp_port))
    call_id = f"{rng.getrandbits(64):x}@{local_ip}"
    branch = f"z9hG4bK{rng.getrandbits(32):x}"
    body = sdp(local_ip, rtp_port)
    base = (f"Via: SIP/2.0/UDP {local_ip}:{lport};branch={branch}\r\nMax-Forwards: 70\r\n"
            f"From: <sip:alice@lab.test>;tag={rng.getrandbits(24):x}\r\nTo: <sip:echo@lab.test>\r\nCall-ID: {call_id}\r\n")
    sip.settimeout(2)
    sip.sendto((f"INVITE sip:echo@{server}:{sip_port} SIP/2.0\r\n{base}CSeq: 1 INVITE\r\n"
                f"Contact: <sip:alice@{local_ip}:{lport}>\r\nUser-Agent: lab-softphone/1.0\r\n"
                f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode(), (server, sip_port))
    answer = ""
    deadline = time.time() + 10
    while "200 OK" not in answer.split("\r\n", 1)[0]:
        if time.time() > deadline:
            print("no 200 OK")
            return 1
        answer = sip.recv(65535).decode(errors="replace")
    m = re.search(r"m=audio (\d+)", answer)
    remote_rtp = (server, int(m.group(1)))
    to = header(answer, "To")
    sip.sendto(f"ACK sip:echo@{server}:{sip_port} SIP/2.0\r\n{base.replace('To: <sip:echo@lab.test>', 'To: ' + to)}"
               f"CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n".encode(), (server, sip_port))
    rtp.setblocking(False)
    ssrc, seq, ts, echoed = rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32), 0
    start = time.time()
    next_send = start
    while time.time() - start < seconds:
        now = time.time()
        if now >= next_send:
            payload = bytes(rng.getrandbits(8) for _ in range(160))  # 20 ms of G.711
            rtp.sendto(struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload, remote_rtp)
            seq, ts, next_send = seq + 1, ts + 160, next_send + 0.02
        try:
            while True:
                rtp.recv(2048)
                echoed += 1
        except BlockingIOError:
            pass
        time.sleep(0.002)
    sip.sendto((f"BYE sip:echo@{server}:{sip_port} SIP/2.0\r\n{base.replace('To: <sip:echo@lab.test>', 'To: ' + to)}"
                f"CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n").encode(), (server, sip_port))
    try:
        sip.recv(65535)
    except socket.timeout:
        pass
    print(f"echoed {echoed}")
    return 0 if echoed > 0 else 1


if __name__ == "__main__":
    if sys.argv[1] == "uas":
        uas(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(uac(sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), int(sys.argv[6])))
