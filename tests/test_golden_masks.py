"""Every criterion × pattern × scope on the shipped models gives the masks (or the error) recorded before
the registry refactor: ``tests/golden/masks.json``, written by ``python tests/golden_masks.py``."""

import json

from golden_masks import CRITERIA, GOLDEN, compute

# taylor changed on purpose: (w·g)² per batch, summed (Molchanov et al. 2019), instead of |w·Σg|; its masks are
# neither compared nor computed (its gradients are a good part of the whole computation)
CHANGED_ON_PURPOSE = ("taylor",)


def test_masks_match_the_recorded_fingerprints():
    recorded = {k: v for k, v in json.loads(GOLDEN.read_text()).items() if k.split("/")[1] not in CHANGED_ON_PURPOSE}
    now = compute(criteria=tuple(c for c in CRITERIA if c not in CHANGED_ON_PURPOSE))
    changed = {
        key: (recorded.get(key), now.get(key))
        for key in recorded.keys() | now.keys()
        if recorded.get(key) != now.get(key)
    }
    assert not changed, f"{len(changed)} fingerprints changed, e.g. {sorted(changed.items())[:5]}"
