"""pcap LINKTYPE_* values: the ones the decoder reads, and names for the ones it does not."""

ETHERNET = 1
NULL = 0           # BSD loopback, address family in host byte order
LOOP = 108         # OpenBSD loopback, address family in network byte order
RAW = 101
RAW_ALT = (12, 14)  # DLT_RAW as some systems number it
IPV4 = 228
IPV6 = 229
LINUX_SLL = 113
LINUX_SLL2 = 276
PPP = 9
PPP_HDLC = 50

SUPPORTED = frozenset({ETHERNET, NULL, LOOP, RAW, *RAW_ALT, IPV4, IPV6, LINUX_SLL, LINUX_SLL2, PPP, PPP_HDLC})

NAMES = {
    0: "NULL", 1: "ETHERNET", 6: "IEEE802_5", 9: "PPP", 10: "FDDI", 12: "RAW", 14: "RAW", 50: "PPP_HDLC",
    51: "PPP_ETHER", 101: "RAW", 104: "C_HDLC", 105: "IEEE802_11", 107: "FRELAY", 108: "LOOP",
    113: "LINUX_SLL", 119: "IEEE802_11_PRISM", 127: "IEEE802_11_RADIOTAP", 143: "DOCSIS", 147: "USER0",
    163: "IEEE802_11_AVS", 189: "USB_LINUX", 192: "PPI", 195: "IEEE802_15_4", 201: "BLUETOOTH_HCI_H4",
    220: "USB_LINUX_MMAPPED", 227: "CAN_SOCKETCAN", 228: "IPV4", 229: "IPV6", 239: "NFLOG", 249: "USBPCAP",
    252: "WIRESHARK_UPPER_PDU", 276: "LINUX_SLL2",
}


def describe(linktype: int) -> str:
    return f"{linktype} ({NAMES.get(linktype, 'unknown')})"
