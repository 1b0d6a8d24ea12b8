"""Live capture: a TPACKET_V3 ring (Linux) or scapy feeding the packet core, early and final verdicts per flow.

`vpndetect sniff` is the command; from Python:

    from detector.live import open_source, LiveFlows, Sniffer
"""

from detector.live.capture import LiveError, PermissionNeeded, open_source  # noqa: F401
from detector.live.engine import LiveFlows  # noqa: F401
from detector.live.sniffer import Sniffer  # noqa: F401
