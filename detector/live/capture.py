"""Packet sources for live capture: a TPACKET_V3 ring on Linux, a small scapy fallback elsewhere.

Both hand out `features.batch.PacketBatch`es, the same structure-of-arrays batches the file readers make, so
everything after capture (decode, flow table, features, model) is the file path's code.

TPACKET_V3 (Linux): socket(AF_PACKET, SOCK_RAW), PACKET_VERSION=TPACKET_V3, PACKET_RX_RING of `blocks`
blocks of `block_size` bytes, each handed over when full or after `retire_ms` (so a quiet link still delivers
within that time), mmap'ed. `read()` drains every ready block in C (features/native/tpacket.c) into a buffer
laid out as pcap records, which makes `--write-pcap` a plain write of that buffer. BPF filters are compiled
with libpcap and attached in the kernel (SO_ATTACH_FILTER) before the socket is bound, so no unfiltered
packet gets in. Kernel counters come from PACKET_STATISTICS (which resets them on every read; they are
accumulated here).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np

from features.batch import PacketBatch
from features.decode import linktypes

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
TPACKET_V3 = 2
SO_ATTACH_FILTER = 26

# ARPHRD_* (if_arp.h) of an interface -> the pcap LINKTYPE of what AF_PACKET SOCK_RAW hands out on it.
ARPHRD_LINKTYPES = {
    1: linktypes.ETHERNET,        # ARPHRD_ETHER (also veth, bridges, bonds, macvlan)
    6: linktypes.ETHERNET,        # ARPHRD_IEEE802
    772: linktypes.ETHERNET,      # ARPHRD_LOOPBACK: zeroed Ethernet header
    512: linktypes.RAW,           # ARPHRD_PPP: no link header on a packet socket
    519: linktypes.RAW,           # ARPHRD_RAWIP
    768: linktypes.RAW,           # ARPHRD_TUNNEL (ipip)
    769: linktypes.RAW,           # ARPHRD_TUNNEL6
    776: linktypes.RAW,           # ARPHRD_SIT
    65534: linktypes.RAW,         # ARPHRD_NONE: tun devices, WireGuard
}
# libpcap's DLT_* for a LINKTYPE_* where they differ (DLT_RAW is 12 on Linux).
_DLT = {linktypes.RAW: 12}

PCAP_NS_MAGIC = 0xA1B23C4D


class LiveError(Exception):
    """Capture cannot start: bad interface, bad filter, missing privilege. The message is for the user."""


class PermissionNeeded(LiveError):
    pass


def interface_linktype(iface: str) -> int:
    try:
        with open(f"/sys/class/net/{iface}/type") as f:
            arphrd = int(f.read().strip())
    except (OSError, ValueError):
        return linktypes.ETHERNET
    if arphrd not in ARPHRD_LINKTYPES:
        raise LiveError(f"interface {iface} has link type ARPHRD {arphrd}, which vpndetect cannot decode")
    return ARPHRD_LINKTYPES[arphrd]


def check_interface(iface: str) -> int:
    """The interface's index; LiveError naming the interface when there is no such interface."""
    if not iface or len(iface) > 15 or "/" in iface:
        raise LiveError(f"no such interface: {iface!r}")
    try:
        return socket.if_nametoindex(iface)
    except OSError:
        known = ", ".join(name for _, name in socket.if_nameindex())
        raise LiveError(f"no such interface: {iface} (interfaces here: {known})") from None


# -- BPF -------------------------------------------------------------------------------------------------

class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


def _libpcap():
    for name in (ctypes.util.find_library("pcap"), "libpcap.so.1", "libpcap.so.0.8", "libpcap.so"):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    return None


def compile_bpf(expression: str, linktype: int = linktypes.ETHERNET, snaplen: int = 262144) -> bytes:
    """A tcpdump filter expression compiled to classic BPF: the bytes of a `struct sock_filter` array."""
    lib = _libpcap()
    if lib is not None:
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p, ctypes.c_int,
                                     ctypes.c_uint32]
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
        lib.pcap_close.argtypes = [ctypes.c_void_p]
        handle = lib.pcap_open_dead(_DLT.get(linktype, linktype), snaplen)
        if not handle:
            raise LiveError("libpcap could not open a handle to compile the filter")
        program = _BpfProgram()
        try:
            if lib.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, 0xFFFFFFFF) != 0:
                raise LiveError(f"bad BPF filter {expression!r}: {lib.pcap_geterr(handle).decode(errors='replace')}")
            code = ctypes.string_at(program.bf_insns, program.bf_len * 8)
            lib.pcap_freecode(ctypes.byref(program))
            return code
        finally:
            lib.pcap_close(handle)
    return _compile_with_tcpdump(expression, linktype)


def _compile_with_tcpdump(expression: str, linktype: int) -> bytes:
    names = {linktypes.ETHERNET: "EN10MB", linktypes.RAW: "RAW"}
    try:
        proc = subprocess.run(["tcpdump", "-y", names.get(linktype, "EN10MB"), "-ddd", expression],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LiveError(f"cannot compile BPF filter: neither libpcap nor tcpdump is usable ({exc})") from None
    if proc.returncode != 0:
        raise LiveError(f"bad BPF filter {expression!r}: {proc.stderr.strip().splitlines()[-1] if proc.stderr else ''}")
    lines = proc.stdout.split("\n")
    count = int(lines[0])
    insns = [tuple(int(x) for x in line.split()) for line in lines[1:1 + count]]
    return b"".join(struct.pack("HBBI", *insn) for insn in insns)


def attach_bpf(sock: socket.socket, code: bytes) -> None:
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(code) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


# -- pcap output -----------------------------------------------------------------------------------------

class PcapWriter:
    """A nanosecond pcap file; takes the TPACKET source's record buffers as they are."""

    def __init__(self, path, linktype: int, snaplen: int = 262144):
        self.handle = open(path, "wb")
        self.handle.write(struct.pack("<IHHiIII", PCAP_NS_MAGIC, 2, 4, 0, 0, snaplen, linktype))

    def write_records(self, records) -> None:
        self.handle.write(memoryview(records))

    def write_batch(self, batch: PacketBatch) -> None:
        """Any batch (the scapy fallback's): pcap records built from its arrays."""
        parts = []
        for off, cap, wire, ts in zip(batch.offset, batch.caplen, batch.wirelen, batch.ts_ns):
            parts.append(struct.pack("<IIII", ts // 1_000_000_000, ts % 1_000_000_000, cap, wire))
            parts.append(batch.data[off:off + cap].tobytes())
        self.handle.write(b"".join(parts))

    def close(self) -> None:
        self.handle.close()


# -- sources ---------------------------------------------------------------------------------------------

class TPacketSource:
    """AF_PACKET TPACKET_V3 ring on one interface.

    Parameters
    ----------
    iface : interface name
    bpf : tcpdump filter expression, compiled and attached in the kernel
    block_size, blocks : ring geometry (bytes per block, a multiple of the page size; number of blocks)
    retire_ms : a block that is not full is handed over after this many milliseconds
    """

    backend = "tpacket"

    def __init__(self, iface: str, bpf: str | None = None, block_size: int = 1 << 20, blocks: int = 64,
                 retire_ms: int = 50):
        if not sys.platform.startswith("linux"):
            raise LiveError("TPACKET_V3 capture needs Linux; use the scapy backend")
        from detector.live import _ring
        self._ring = _ring
        self.iface = iface
        self.ifindex = check_interface(iface)
        self.linktype = interface_linktype(iface)
        self.block_size = int(block_size)
        self.blocks = int(blocks)
        page = os.sysconf("SC_PAGE_SIZE")
        if self.block_size % page or self.block_size < page:
            raise LiveError(f"block size must be a multiple of the page size ({page} bytes)")
        self.ring_size = self.block_size * self.blocks
        # At shutdown: how long the block being filled may take to be handed over.
        self.flush_wait = 2 * int(retire_ms) / 1000 + 0.02
        self.address = 0
        self.sock = None
        self.received = 0
        self.dropped = 0
        self.freeze_count = 0
        code = compile_bpf(bpf, self.linktype) if bpf else None
        try:
            # Protocol 0: nothing is received before bind(), so the filter is in place for the first packet.
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise PermissionNeeded(
                f"capturing on {iface} needs CAP_NET_RAW: run as root, or grant it to the interpreter "
                f"(sudo setcap cap_net_raw,cap_net_admin+eip {os.path.realpath(sys.executable)})") from None
        try:
            if code:
                attach_bpf(self.sock, code)
            self.sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            frame_size = 2048
            req = struct.pack("7I", self.block_size, self.blocks, frame_size,
                              (self.block_size // frame_size) * self.blocks, int(retire_ms), 0, 0)
            try:
                self.sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            except OSError as exc:
                raise LiveError(f"cannot set up a {self.ring_size >> 20} MiB capture ring: {exc.strerror}") from None
            self.address = _ring.mmap_ring(self.sock.fileno(), self.ring_size)
            if not self.address:
                raise LiveError("cannot map the capture ring into memory")
        except BaseException:
            self.close()
            raise
        self.cursor = np.zeros(1, np.int64)
        self.info = np.zeros(3, np.int64)
        # Room for half the ring per read (at least two blocks): under load batches grow until the per-batch
        # cost is small per packet, while the other half of the ring keeps filling.
        # (A block is taken whole: the limit must hold a block of minimum-size frames, 64 bytes a slot.)
        self.limit = max(4096, 2 * (self.block_size // 64), self.ring_size // 2 // 64)
        self.buffer = np.empty(max(2 * self.block_size, self.ring_size // 2) + 4096, np.uint8)
        self._offset = np.empty(self.limit, np.int64)
        self._caplen = np.empty(self.limit, np.int64)
        self._wirelen = np.empty(self.limit, np.int64)
        self._ts = np.empty(self.limit, np.int64)
        self.records = memoryview(b"")

    def start(self) -> None:
        """Bind to the interface: packets flow into the ring from now on."""
        try:
            self.sock.bind((self.iface, ETH_P_ALL))
        except OSError as exc:
            raise LiveError(f"cannot capture on {self.iface}: {exc.strerror}") from None

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> PacketBatch | None:
        """Frames of every block handed over so far (None when there is none); the batch's buffers are
        reused by the next read, so a batch must be consumed before reading again."""
        n = self._ring.drain(self.address, self.block_size, self.blocks, self.cursor, self.buffer, self.limit,
                             self.linktype == linktypes.ETHERNET, self._offset, self._caplen, self._wirelen,
                             self._ts, self.info)
        if n <= 0:
            return None
        used = int(self.info[0])
        self.records = self.buffer[:used]
        return PacketBatch(self.buffer[:used], self._offset[:n], self._caplen[:n], self._wirelen[:n],
                           self._ts[:n], np.full(n, self.linktype, np.int64))

    def error(self) -> str | None:
        """After poll() reported an error on the socket: what happened, if capture cannot go on."""
        import errno
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        try:
            socket.if_nametoindex(self.iface)
        except OSError:
            return f"interface {self.iface} disappeared"
        if code in (errno.ENETDOWN, errno.ENODEV, errno.ENXIO):
            return f"interface {self.iface} went down"
        return None

    def more_ready(self) -> bool:
        """A read stopped for lack of room: more blocks are waiting."""
        return bool(self.info[2])

    def stats(self) -> dict:
        """Kernel counters since the socket was bound: packets received and dropped by the ring."""
        if self.sock is not None:
            try:
                packets, drops, freezes = struct.unpack("3I", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12))
            except OSError:
                packets = drops = freezes = 0
            # The kernel counts dropped packets in tp_packets too, and resets both on every read.
            self.received += packets - drops
            self.dropped += drops
            self.freeze_count += freezes
        return {"kernel_received": self.received, "kernel_dropped": self.dropped,
                "ring_freezes": self.freeze_count}

    def write_pending(self, writer: PcapWriter, batch: PacketBatch) -> None:
        writer.write_records(self.records)

    def close(self) -> None:
        if self.address:
            self._ring.munmap_ring(self.address, self.ring_size)
            self.address = 0
        if self.sock is not None:
            self.stats()
            self.sock.close()
            self.sock = None


class ScapySource:
    """Portable fallback (macOS, BSD, Windows with Npcap): scapy's AsyncSniffer, frames gathered into batches.

    Slow (a Python call per packet inside scapy), meant for light traffic; the kernel's drop counters are not
    reachable through it, so drops read as unknown.
    """

    backend = "scapy"

    def __init__(self, iface: str, bpf: str | None = None, **_):
        try:
            from scapy.all import AsyncSniffer, conf  # noqa: F401
        except ImportError:
            raise LiveError("the portable capture backend needs scapy (pip install scapy)") from None
        if sys.platform.startswith("linux"):
            check_interface(iface)
        self.iface = iface
        self.linktype = None
        self._frames: list[tuple[int, bytes, int]] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.records = None
        self.received = 0
        self.flush_wait = 0.3
        self.bpf = bpf
        self._sniffer = None

    def start(self) -> None:
        iface = self.iface
        from scapy.all import AsyncSniffer
        try:
            opened = threading.Event()
            self._sniffer = AsyncSniffer(iface=iface, filter=self.bpf, store=False, prn=self._on_packet,
                                         started_callback=opened.set)
            self._sniffer.start()
            # The sniffer opens its socket in its own thread; it is capturing once the callback ran.
            deadline = time.monotonic() + 10
            while not opened.wait(0.05) and time.monotonic() < deadline:
                if getattr(self._sniffer, "exception", None) is not None or not self._sniffer.thread.is_alive():
                    break
            exc = getattr(self._sniffer, "exception", None)
            if exc is not None:
                raise exc
        except PermissionError:
            raise PermissionNeeded(f"capturing on {iface} needs CAP_NET_RAW (or root)") from None
        except (OSError, ValueError) as exc:
            raise LiveError(f"cannot capture on {iface}: {exc}") from None

    def _on_packet(self, pkt):
        raw = bytes(pkt)
        if self.linktype is None:
            self.linktype = _scapy_linktype(pkt)
        ts = int(float(pkt.time) * 1e9)
        with self._lock:
            self._frames.append((ts, raw, getattr(pkt, "wirelen", None) or len(raw)))
            first = len(self._frames) == 1
        if first:
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass

    def fileno(self) -> int:
        return self._wake_r

    def read(self) -> PacketBatch | None:
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        with self._lock:
            frames, self._frames = self._frames, []
        if not frames:
            return None
        self.received += len(frames)
        caplen = np.array([len(raw) for _, raw, _ in frames], np.int64)
        offset = np.concatenate([[0], np.cumsum(caplen)[:-1]]).astype(np.int64)
        data = np.frombuffer(b"".join(raw for _, raw, _ in frames), np.uint8)
        ts = np.array([t for t, _, _ in frames], np.int64)
        wirelen = np.maximum(np.array([w for _, _, w in frames], np.int64), caplen)
        return PacketBatch(data, offset, caplen, wirelen, ts, np.full(len(frames), self.linktype or 1, np.int64))

    def more_ready(self) -> bool:
        return False

    def error(self) -> str | None:
        return None

    def stats(self) -> dict:
        return {"kernel_received": self.received, "kernel_dropped": None, "ring_freezes": None}

    def write_pending(self, writer: PcapWriter, batch: PacketBatch) -> None:
        writer.write_batch(batch)

    def close(self) -> None:
        sniffer, self._sniffer = getattr(self, "_sniffer", None), None
        if sniffer is not None:
            try:
                sniffer.stop(join=True)
            except Exception:  # noqa: BLE001 - a sniffer that never started cannot be stopped
                pass
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


def _scapy_linktype(pkt) -> int:
    name = type(pkt).__name__
    return {"Ether": linktypes.ETHERNET, "IP": linktypes.RAW, "IPv6": linktypes.RAW, "Loopback": linktypes.NULL,
            "CookedLinux": linktypes.LINUX_SLL, "CookedLinuxV2": linktypes.LINUX_SLL2}.get(name, linktypes.ETHERNET)


def open_source(iface: str, bpf: str | None = None, backend: str = "auto", **ring) -> TPacketSource | ScapySource:
    """The capture backend for this platform (or the one asked for)."""
    if backend == "auto":
        backend = "tpacket" if sys.platform.startswith("linux") else "scapy"
    if backend == "tpacket":
        return TPacketSource(iface, bpf, **ring)
    if backend == "scapy":
        return ScapySource(iface, bpf)
    raise LiveError(f"unknown capture backend {backend!r}")
