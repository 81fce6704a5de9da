"""The run's CSV log and its PNG plot of the loss and validation PSNR curves."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

__all__ = ["COLUMNS", "RunLog"]

log = logging.getLogger(__name__)

COLUMNS = ("step", "stage", "loss", "lr", "ms_per_step", "val_psnr", "val_ssim", "d_loss")


class RunLog:
    """Appends rows to ``run_dir/log.csv``; :meth:`truncate` drops rows past a resumed step."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "log.csv"
        self.plot_path = Path(run_dir) / "curves.png"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.is_file():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(COLUMNS)

    def rows(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def truncate(self, step: int) -> None:
        """Keep only rows with step <= ``step`` (a resumed run re-logs what came after)."""
        kept = [r for r in self.rows() if int(r["step"]) <= step]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(kept)

    def append(self, **values: float | int | str) -> None:
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown log columns {sorted(unknown)}")
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([values.get(c, "") for c in COLUMNS])

    def plot(self) -> Path | None:
        """Draw loss (log scale) and validation PSNR against step into ``curves.png``.

        Returns the path, or None when matplotlib is missing (logged, training goes on).
        """
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            log.warning("matplotlib is not installed; no plot (pip install 'vsr[train]')")
            return None
        rows = self.rows()

        def series(key: str) -> tuple[list[int], list[float]]:
            pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
            pts = [(s, v) for s, v in pts if math.isfinite(v)]
            return [s for s, _ in pts], [v for _, v in pts]

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        ax1.plot(*series("loss"), lw=0.8)
        ax1.set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
        ax2.plot(*series("val_psnr"), marker="o", ms=3)
        ax2.set(xlabel="step", ylabel="Y-PSNR (dB)", title="validation PSNR")
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(self.plot_path, dpi=90)
        plt.close(fig)
        return self.plot_path
