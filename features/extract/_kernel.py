"""Layout of the per-flow feature state, shared with the compiled per-batch update (native/features.c keeps
the same columns and constants).

Every per-flow quantity lives in a row of numpy arrays (see `FeatureState`); `row_of` maps a flow-table row
to its feature row. The kernel is called once per batch; it takes a free feature row and resets it when a
flow's first packet (ordinal 0) arrives, so rows need no clearing at expiry.
"""

# Columns of the int64 state matrix. Index 0/1 of a pair is the direction (0: initiator to responder);
# triples add 2 for "either direction".
PROTO = 0
PKTS = 1                  # 1, 2
PL_PKTS = 3               # 3, 4
PL_BYTES = 5              # 5, 6
PL_MIN = 7                # 7, 8
PL_MAX = 9                # 9, 10
LAST_TS = 11              # 11, 12, 13 (ns)
IAT_N = 14                # 14, 15, 16
IAT_MIN = 17              # 17, 18, 19 (ns)
IAT_MAX = 20              # 20, 21, 22 (ns)
FIRST_TS = 23
FLAG_COUNTS = 24          # 24..31 direction 0, 32..39 direction 1: FIN SYN RST PSH ACK URG ECE CWR
BURST_DIR = 40            # direction of the current run of payload packets, -1 before the first
BURST_PKTS = 41
BURST_BYTES = 42
BURSTS = 43
BURST_MAX_PKTS = 44       # 44, 45
BURST_MAX_BYTES = 46      # 46, 47
PREFIX_LEN = 48           # 48, 49: bytes of the stream prefix kept per direction
PREFIX_FIRST = 50         # 50, 51: payload length of the first payload packet per direction
PREFIX_NEXT_SEQ = 52      # 52, 53: TCP sequence number that continues the prefix, -1 once it is closed
RESETS_LATE = 54          # OpenVPN hard-reset opcodes seen after the first two payload packets
RESPONDER_PORT = 55       # only for the well-known-port flag; never a feature itself
N_INT = 56

# Columns of the float64 state matrix.
PL_SUM = 0                # 0, 1
PL_SQ = 2                 # 2, 3
IAT_SUM = 4               # 4, 5, 6 (microseconds)
IAT_SQ = 7                # 7, 8, 9
N_FLOAT = 10

SIZE_BINS = 48            # log2 histogram of payload sizes, 3 bins per octave: 1 B .. 64 KiB
IAT_BINS = 48             # log2 histogram of inter-arrival times in microseconds, 2 bins per octave: 1 us .. 16 s+
SIZE_BINS_PER_OCTAVE = 3.0
IAT_BINS_PER_OCTAVE = 2.0

OPCODE_PACKETS = 100      # payload packets whose OpenVPN opcode position is counted (Xue et al. 2022)
