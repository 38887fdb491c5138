"""Draw the README's figures from the shipped checkpoints: python docs/make_figures.py"""

from pathlib import Path

import workbench as wb
from workbench.viz.storage import plot_storage
from workbench.widgets.tour import TourApp

HERE = Path(__file__).parent


def main() -> None:
    app = TourApp()
    app.slider.value = 0.8
    (HERE / "tour.png").write_bytes(app.view.png())
    print(f"wrote {HERE / 'tour.png'}")
    cnn = wb.pretrained("cnn")
    wb.prune(cnn, sparsity=None, pattern="2:4", exclude=["stem.0"])  # a 1-channel stem has no groups of 4 inputs
    plot_storage(wb.storage_report(cnn), title="cnn at 2:4: where the bytes go").savefig(HERE / "storage.png", dpi=100)
    print(f"wrote {HERE / 'storage.png'}")


if __name__ == "__main__":
    main()
