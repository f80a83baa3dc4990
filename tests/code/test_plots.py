"""The figures evaluate logs: drawn headless, with the counts and the AUC a reader looks for."""

from __future__ import annotations

import io

from matplotlib.figure import Figure

from epochline.evaluation import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # as mlflow.log_figure saves it, no GUI backend
    return buffer.getvalue()


def test_confusion_figure_writes_each_count_in_its_cell() -> None:
    fig = plots.confusion_figure([[50, 3], [7, 40]])
    (ax,) = fig.axes
    cells = {(t.get_position(), t.get_text()) for t in ax.texts}
    assert cells == {((0, 0), "50"), ((1, 0), "3"), ((0, 1), "7"), ((1, 1), "40")}
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "actual")
    assert _png(fig).startswith(PNG)


def test_roc_figure_draws_the_curve_and_names_its_auc() -> None:
    points = [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.25, "tpr": 0.75}, {"fpr": 1.0, "tpr": 1.0}]
    fig = plots.roc_figure(points, 0.84567)
    (ax,) = fig.axes
    curve, chance = ax.get_lines()
    assert list(curve.get_xdata()) == [0.0, 0.25, 1.0]
    assert list(curve.get_ydata()) == [0.0, 0.75, 1.0]
    assert list(chance.get_xdata()) == [0, 1] == list(chance.get_ydata())
    legend = ax.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["AUC 0.846"]
    assert _texts(fig) == []
    assert _png(fig).startswith(PNG)
