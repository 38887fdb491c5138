"""Draw the README's figures from the shipped checkpoints: python docs/make_figures.py"""

from pathlib import Path

from workbench.widgets.tour import TourApp

HERE = Path(__file__).parent


def main() -> None:
    app = TourApp()
    app.slider.value = 0.8
    (HERE / "tour.png").write_bytes(app.view.png())
    print(f"wrote {HERE / 'tour.png'}")


if __name__ == "__main__":
    main()
