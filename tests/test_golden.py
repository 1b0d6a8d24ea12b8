"""Golden verdicts: the shipped model on real captures, flow by flow, against tests/golden/verdicts.csv.

The captures are the demo and the first session of every lab variant. A change that moves any verdict, protocol
name, score (beyond 1e-4) or evidence shows here. When the change is meant (a retrained model, a new signature,
a rebuilt lab), regenerate the file and review its diff:

    VPNDETECT_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detector.pipeline import load_detector
from features.extract.api import extract_features

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "verdicts.csv"
COLUMNS = ["capture", "src_ip", "src_port", "dst_ip", "dst_port", "transport", "packets", "label", "protocol",
           "score", "evidence"]


def golden_captures() -> list[Path]:
    labels = pd.read_csv(ROOT / "pcaps" / "lab" / "labels.csv")
    first = labels.sort_values(["variant", "session"]).groupby("variant").capture.first()
    return [ROOT / "pcaps" / "demo" / "mixed-vpn-proxy-https.pcap.gz"] + \
        [ROOT / "pcaps" / "lab" / name for name in sorted(first)]


def verdicts() -> pd.DataFrame:
    frame = load_detector().classify(extract_features(golden_captures()))
    frame["capture"] = [str(Path(p).relative_to(ROOT)) for p in frame["capture"]]
    frame["evidence"] = frame["evidence"].fillna("")
    return frame[COLUMNS].sort_values(COLUMNS[:6]).reset_index(drop=True)


def test_verdicts_match_the_golden_file():
    got = verdicts()
    if os.environ.get("VPNDETECT_UPDATE_GOLDEN"):
        got.to_csv(GOLDEN, index=False)
        pytest.skip(f"wrote {GOLDEN}")
    expected = pd.read_csv(GOLDEN, keep_default_na=False, dtype={"evidence": str})
    assert len(got) == len(expected), "a different number of flows"
    key = ["capture", "src_ip", "src_port", "dst_ip", "dst_port", "transport", "packets"]
    pd.testing.assert_frame_equal(got[key], expected[key], check_dtype=False)
    for column in ("label", "protocol", "evidence"):
        differ = np.flatnonzero(got[column].to_numpy() != expected[column].to_numpy())
        assert not len(differ), f"{column} changed for {len(differ)} flows, first:\n" \
                                f"{got.iloc[differ[0]].to_dict()}\nwas {expected[column][differ[0]]!r}"
    np.testing.assert_allclose(got["score"], expected["score"], rtol=0, atol=1e-4)
