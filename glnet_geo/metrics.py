"""Segmentation metrics from one confusion matrix: IoU, mIoU, pixel accuracy.

Training's validation and ``glnet-geo evaluate`` both accumulate a
:class:`ConfusionMatrix` and read their figures from :func:`scores`, so the
two always agree.

Two kinds of pixels are left out of the matrix: pixels with no label
(:data:`~glnet_geo.classes.NO_CLASS`: outside the labelled area, padding) and pixels whose label
is the dataset's ignored class (DeepGlobe's ``unknown``). The ignored class is
also left out of the mean IoU, as the GLNet paper does; predictions *of* it on
other pixels still count as errors. A class absent from both the labels and
the predictions has no IoU (NaN) and does not enter the mean.

The official GLNet evaluator scores differently (``official=True`` here): the
ignored class stays in the matrix (its pixels count against the class they
are predicted as, and predictions of it count against the true class), the
mean IoU is taken over the other classes, and a class absent from both
labels and predictions counts as an IoU of 0 (its ``nan_to_num``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from glnet_geo.classes import NO_CLASS


class ConfusionMatrix(MulticlassConfusionMatrix):
    """A pixel confusion matrix (rows: labels, columns: predictions).

    It is a torchmetrics metric, so Lightning sums it over processes in a
    distributed run.

    Args:
        num_classes: Number of classes.
        ignore_index: Class whose pixels are left out, if any.

    """

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        super().__init__(num_classes=num_classes, ignore_index=NO_CLASS, validate_args=False)
        self.ignored_class = ignore_index

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add class predictions and labels of the same shape (any number of pixels)."""
        target = target.long()
        if self.ignored_class is not None:
            target = target.masked_fill(target == self.ignored_class, NO_CLASS)
        super().update(preds.long(), target)


@dataclass
class SegmentationScores:
    """The figures read from a confusion matrix.

    Attributes:
        confusion: ``(K, K)`` pixel counts, rows labels, columns predictions.
        class_names: One name per class.
        ignore_index: The ignored class (left out of ``miou``), if any.
        official: Scored as the official GLNet evaluator does (see the
            module docstring): the matrix holds the ignored class's pixels,
            absent classes count as 0 in the mean.

    """

    confusion: np.ndarray
    class_names: list[str]
    ignore_index: int | None = None
    official: bool = False

    @property
    def iou(self) -> np.ndarray:
        """Per-class intersection over union (NaN where a class never occurs)."""
        cm = self.confusion.astype(np.float64)
        inter = np.diag(cm)
        union = cm.sum(0) + cm.sum(1) - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, inter / union, np.nan)
        if self.ignore_index is not None:
            iou[self.ignore_index] = np.nan
        return iou

    @property
    def miou(self) -> float:
        """Mean IoU over the scored classes (ignored and absent classes left out).

        Officially, absent classes count as 0 and only the ignored class is left out.
        """
        iou = self.iou
        if self.official:
            scored = [i for i in range(len(iou)) if i != self.ignore_index]
            return float(np.mean(np.nan_to_num(iou[scored]))) if scored else float("nan")
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    @property
    def pixel_accuracy(self) -> float:
        """Share of scored pixels predicted right."""
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")

    def class_iou(self, name: str) -> float:
        """IoU of the class called ``name`` (for instance Inria's ``building``)."""
        return float(self.iou[self.class_names.index(name)])

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: mIoU, pixel accuracy, per-class IoU, the matrix."""
        return {
            "miou": _finite(self.miou),
            "pixel_accuracy": _finite(self.pixel_accuracy),
            "iou": {n: _finite(v) for n, v in zip(self.class_names, self.iou, strict=True)},
            "ignore_index": self.ignore_index,
            "protocol": "official" if self.official else "ours",
            "class_names": list(self.class_names),
            "confusion_matrix": self.confusion.astype(np.int64).tolist(),
        }

    def table(self) -> str:
        """Format the scores as text: one line per class, then mIoU and pixel accuracy."""
        width = max(len(n) for n in [*self.class_names, "pixel accuracy"])
        lines = [f"{'class':<{width}}  IoU"]
        for i, (name, value) in enumerate(zip(self.class_names, self.iou, strict=True)):
            note = "  (ignored)" if i == self.ignore_index else ""
            shown = "   -" if np.isnan(value) else f"{100 * value:5.1f}"
            lines.append(f"{name:<{width}}  {shown}{note}")
        lines.append(f"{'mIoU':<{width}}  {100 * self.miou:5.1f}")
        lines.append(f"{'pixel accuracy':<{width}}  {100 * self.pixel_accuracy:5.1f}")
        return "\n".join(lines)

    def plot_confusion(self, path: str | os.PathLike) -> None:
        """Save the row-normalised confusion matrix as a PNG heat map."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        cm = self.confusion.astype(np.float64)
        rows = cm.sum(1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        k = len(self.class_names)
        fig, ax = plt.subplots(figsize=(1.0 + 0.7 * k, 0.8 + 0.7 * k))
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(k), self.class_names, rotation=45, ha="right")
        ax.set_yticks(range(k), self.class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("label")
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_title(f"mIoU {100 * self.miou:.1f}")
        fig.tight_layout()
        from glnet_geo.io.staging import Staging
        from glnet_geo.io.writer import writing

        path = Path(path)
        try:
            with Staging(path) as staging, writing(path):
                tmp = staging.path(".partial.png")
                fig.savefig(tmp, dpi=100, format="png")
                os.replace(tmp, path)
        finally:
            plt.close(fig)


def scores(confusion: ConfusionMatrix | torch.Tensor | np.ndarray, class_names: list[str],
           ignore_index: int | None = None, official: bool = False) -> SegmentationScores:
    """Figures of a confusion matrix (a metric, or its counts).

    Args:
        confusion: A :class:`ConfusionMatrix` or its ``(K, K)`` counts.
        class_names: One name per class.
        ignore_index: The ignored class, if any.
        official: Score as the official GLNet evaluator (see the module
            docstring); ``confusion`` must then hold the ignored class's
            pixels (``ConfusionMatrix(k, None)``).

    Returns:
        mIoU, per-class IoU and pixel accuracy of those counts.

    """
    if isinstance(confusion, ConfusionMatrix):
        ignore_index = confusion.ignored_class if ignore_index is None else ignore_index
        confusion = confusion.compute()
    if isinstance(confusion, torch.Tensor):
        confusion = confusion.detach().cpu().numpy()
    return SegmentationScores(np.asarray(confusion), list(class_names), ignore_index, official)


def _finite(value: float) -> float | None:
    """``None`` for NaN (JSON has no NaN)."""
    return None if np.isnan(value) else float(value)
