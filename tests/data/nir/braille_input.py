"""The Braille test sample of the NIR paper, read from its figure (see README.md)."""

import zlib
from pathlib import Path

import numpy as np

FIGURE = Path(__file__).parent / "rnn_braille_input.pdf"


def read(figure: Path = FIGURE) -> np.ndarray:
    """``[256, 12]`` 0/1: the figure's one-bit image, rows turned back to taxels 1..12."""
    pdf = figure.read_bytes()
    start = pdf.index(b"stream\n", pdf.index(b"/Subtype /Image")) + len(b"stream\n")
    raw = zlib.decompress(pdf[start : pdf.index(b"endstream", start)])
    rows, previous = [], bytes(32)
    for r in range(12):  # PNG rows: a filter byte (0 none, 2 up), then 256 bits
        kind, row = raw[33 * r], raw[33 * r + 1 : 33 * (r + 1)]
        if kind not in (0, 2):
            raise ValueError(f"PNG filter {kind} in row {r}: not the figure this reads")
        previous = bytes((a + b) & 255 for a, b in zip(row, previous, strict=True)) if kind else row
        rows.append(np.unpackbits(np.frombuffer(previous, np.uint8)))
    return np.array(rows)[::-1].T.copy()  # the figure draws taxel 1 at the bottom
