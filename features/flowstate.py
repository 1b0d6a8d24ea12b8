"""Layout of the flow table's state, shared with the compiled kernel (native/flowtable.c keeps the same order)."""

# Columns of the state matrix, one row per flow. FWD is initiator to responder, REV the other way.
(A_HI, A_LO, B_HI, B_LO, PORT_A, PORT_B, PROTO, VLAN, INIT_IS_A, FIRST_TS, LAST_TS,
 PKTS_FWD, PKTS_REV, BYTES_FWD, BYTES_REV, FLAGS, HASH, PREV, NEXT, LIST, FLOW_ID, END_REASON, ACTIVE_TS) = range(23)
N_COLUMNS = 23
# LAST_TS is the last counted packet; ACTIVE_TS the last packet at all (they differ past max_packets).

# FLAGS bits.
FIN_FWD, FIN_REV, RST_SEEN, CONTINUATION, SYN_SEEN = 1, 2, 4, 8, 16

# End reasons (after IPFIX flowEndReason where one exists).
IDLE_TIMEOUT, ACTIVE_TIMEOUT, FIN, RST, EVICTED, END_OF_CAPTURE = 1, 2, 3, 4, 5, 6
END_REASONS = {IDLE_TIMEOUT: "idle_timeout", ACTIVE_TIMEOUT: "active_timeout", FIN: "fin", RST: "rst",
               EVICTED: "evicted", END_OF_CAPTURE: "end_of_capture"}

# Slots of the meta vector.
(OPEN_HEAD, OPEN_TAIL, CLOSED_HEAD, CLOSED_TAIL, NOW, FREE_TOP, LIVE, NEXT_FLOW_ID, N_EXPIRED) = range(9)
N_META = 9
