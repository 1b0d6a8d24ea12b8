"""Build of the compiled kernels; everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "features.native._kernels",
            sources=["features/native/scan.c", "features/native/flowtable.c",
                     "features/native/tpacket.c", "features/native/features.c",
                     "features/native/readout.c", "features/native/bytestats.c", "features/native/dns.c",
                     "features/native/tls.c", "features/native/gather.c", "features/native/trees.c",
                     "features/native/sequence.c", "features/native/websocket.c",
                     "features/native/openvpn.c", "features/native/ipsec.c", "features/native/socks.c",
                     "features/native/wireguard.c", "features/native/l2tp_pptp.c",
                     "features/native/udp_handshakes.c", "features/native/fake_tls.c",
                     "features/native/anyconnect.c", "features/native/sstp.c"],
            # No contraction into fused multiply-adds: feature values must not depend on the machine.
            extra_compile_args=["-O2", "-std=c11", "-ffp-contract=off"],
            libraries=["m"],
        )
    ]
)
