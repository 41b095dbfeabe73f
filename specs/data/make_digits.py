"""Write ``digits.npz`` beside this script: the 8x8 handwritten digits for the examples.

Run ``python specs/data/make_digits.py``. The arrays are ``images``, float32 of shape
(1797, 1, 8, 8) scaled to [0, 1], and ``labels``, int64 of shape (1797,) with the digit 0-9.

Source: scikit-learn's bundled copy (``sklearn.datasets.load_digits``, no download) of the
test set of the UCI "Optical Recognition of Handwritten Digits" data (E. Alpaydin and
C. Kaynak, Bogazici University, 1998): 32x32 bitmaps of digits written on forms by 13
people, reduced to 8x8 counts of set pixels (0-16) per 4x4 block, with NIST's tools.
scikit-learn's description names that source but gives no licence for the data itself
(scikit-learn's code is BSD-3-Clause); the data's terms are those of the UCI Machine
Learning Repository (https://archive.ics.uci.edu/dataset/80, which lists CC BY 4.0),
which asks that users cite it and the authors.

``digits.npz`` is committed, so the examples run without scikit-learn; this script is only
needed to make it again. A rerun gives the same bytes: ``np.savez_compressed`` dates every
zip entry 1980-01-01 (zipfile's default), not with the time of writing.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> int:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("make_digits.py needs scikit-learn: pip install scikit-learn", file=sys.stderr)
        return 2
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    assert images.shape == (1797, 1, 8, 8) and labels.shape == (1797,)
    assert 0.0 <= images.min() and images.max() <= 1.0

    target = Path(__file__).resolve().parent / "digits.npz"
    fd, tmp = tempfile.mkstemp(prefix=".digits.", suffix=".npz.tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:  # a file object: savez would append .npz to a name
            np.savez_compressed(f, images=images, labels=labels)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"wrote {target} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
