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
                     "features/native/handshakes.c"],
            # No contraction into fused multiply-adds: feature values must not depend on the machine.
            extra_compile_args=["-O2", "-std=c11", "-ffp-contract=off"],
            libraries=["m"],
        )
    ]
)
