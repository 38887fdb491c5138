"""Every criterion × pattern × scope on the shipped models gives the masks (or the error) recorded before
the registry refactor: ``tests/golden/masks.json``, written by ``python tests/golden_masks.py``."""

import json

from golden_masks import GOLDEN, compute


def test_masks_match_the_recorded_fingerprints():
    recorded = json.loads(GOLDEN.read_text())
    now = compute()
    changed = {
        key: (recorded.get(key), now.get(key))
        for key in recorded.keys() | now.keys()
        if recorded.get(key) != now.get(key)
    }
    assert not changed, f"{len(changed)} fingerprints changed, e.g. {sorted(changed.items())[:5]}"
