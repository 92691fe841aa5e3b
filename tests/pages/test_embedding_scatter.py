"""The Embedding Scatter page on digits with tiny random-init models, plus its pure helpers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import pytest
from streamlit.testing.v1 import AppTest

from components import charts, scatter_view
from components.charts import selected_indices
from components.scatter_view import embeddings_npz, export_table
from core.analysis.projection import compute_projection
from core.data import ImageItem, ImageSet
from core.datasets import load_seed_dataset
from tests.pages.test_patch_matching import array, chart
from tests.widgets import hover_data, sprite_pixels

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "embedding_scatter.py")
CLIP_CHART = "scatter_clip_tiny_chart"  # f"{page key}_{model name}_chart"


def _page(**state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _submit(at: AppTest, dataset: str, per_class: int = 10, families=("text",)) -> AppTest:
    at.radio(key="scatter_dataset").set_value(dataset)
    at.number_input(key="scatter_per_class").set_value(per_class)
    at.multiselect(key="scatter_families").set_value(list(families))
    return at.button(key="scatter_go").click().run()


def _selection(*points: tuple[int, int]) -> dict:
    """What Streamlit's frontend reports for clicked points: (curve_number, point_index) each."""
    listed = [{"curve_number": c, "point_number": p, "point_index": p} for c, p in points]
    return {"selection": {"points": listed, "point_indices": [p for _, p in points], "box": [], "lasso": []}}


def _clicked(at: AppTest, key: str, *rows: int) -> dict:
    """The selection event of clicks on the points of `rows`, found by the row each point carries (customdata)."""
    points = []
    for row in rows:
        for curve, trace in enumerate(chart(at, key)["data"]):
            hits = np.flatnonzero(array(trace["customdata"]) == row)
            points += [(curve, int(hits[0]))] if hits.size else []
    assert len(points) == len(rows), points
    return _selection(*points)


def _texts(at: AppTest) -> str:
    return " ".join(e.value for kind in (at.caption, at.markdown, at.info, at.warning, at.error) for e in kind)


def test_nothing_is_computed_before_the_button_and_bad_sources_explain_themselves():
    at = _page()
    assert at.radio(key="scatter_dataset").value == "digits"  # the default working set has no labels
    assert "press **Embed and project**" in _texts(at) and not at.get("plotly_chart")
    _submit(at, "working")
    assert not at.exception and not at.get("plotly_chart")
    assert "no class labels" in at.info[0].value and "Upload page" in at.info[0].value
    _submit(at, "cifar10")  # offline in tests: one clear sentence, quickly, nothing else breaks
    assert not at.exception and "network is unreachable" in at.error[0].value


def test_a_single_class_working_set_asks_for_another_class():
    image = np.zeros((8, 8, 3), np.uint8)
    working = ImageSet([ImageItem(f"cat{i}.png", image, "cats") for i in range(12)])
    at = _submit(_page(working_set=working), "working")
    assert not at.exception and "one class ('cats')" in at.info[0].value


def test_digits_with_two_models_render_table_scatters_and_selected_images():
    at = _submit(_page(), "digits", per_class=10, families=("text", "dense"))
    assert not at.exception, at.exception
    assert "Using 100 of 1,797 images: at most 10 per class" in _texts(at)
    table = next(d.value for d in at.dataframe if d.value.index.name == "model")  # the accuracy table
    assert list(table.index) == ["CLIP tiny (test)", "DINOv2 tiny (test)"]
    assert [c.split(" · ")[1] for c in table.columns] == ["LDA", "k-NN"]
    assert ((table >= 0) & (table <= 1)).all().all()
    assert len(at.get("plotly_chart")) == 3  # two scatters side by side + the confusion matrix
    assert not [im for im in at.image if any("[" in c for c in im.captions)]  # nothing selected yet

    digits = load_seed_dataset("digits", 10)  # the page's images: class order 0..9, 10 each
    hover = hover_data(at)  # one sprite for both charts; tile r is the picture of row r
    assert hover["metas"] == ["scatter_clip_tiny", "scatter_dinov2_tiny"] and hover["rows"] == list(range(100))
    sprite, side, columns = sprite_pixels(hover), hover["side"], hover["columns"]
    for row in (0, 37, 99):
        top, left = (row // columns) * side + 16, (row % columns) * side + 16  # 32-px digits centred in 64
        tile = sprite[top : top + 32, left : left + 32].astype(int)
        assert np.abs(tile - digits.items[row].image.astype(int)).mean() < 12, row
    at.session_state[CLIP_CHART] = _clicked(at, CLIP_CHART, 0, 1, 23)  # rows 0, 1 are class 0, row 23 class 2
    at.run()
    assert not at.exception, at.exception
    expected = [f"{digits.items[i].name} [{digits.items[i].label}]" for i in (0, 1, 23)]
    shown = [im.captions for im in at.image if any("[" in c for c in im.captions)]
    assert shown == [expected]  # only the CLIP panel has a selection
    assert "**3 selected** (2 × 0, 1 × 2)" in _texts(at)


def test_a_click_selects_one_point_and_shows_its_image():
    at = _submit(_page(), "digits", per_class=10)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["meta"] == "scatter_clip_tiny"
    # Streamlit's frontend selects on click unless the drag mode is box or lasso (then a click selects nothing)
    assert spec["layout"].get("dragmode") not in ("lasso", "select")
    assert "Click a point to see its image" in _texts(at)
    at.session_state[CLIP_CHART] = _clicked(at, CLIP_CHART, 34)  # what a click on the 5th image of class "3" reports
    at.run()
    digits = load_seed_dataset("digits", 10)
    shown = [im.captions for im in at.image if any("[" in c for c in im.captions)]
    assert shown == [[f"{digits.items[34].name} [3]"]] and "**1 selected** (1 × 3)" in _texts(at)


def test_beyond_the_point_limit_the_scatter_states_its_sample(monkeypatch):
    monkeypatch.setattr(scatter_view, "MAX_PLOT_POINTS", 40)
    at = _submit(_page(), "digits", per_class=10)
    assert not at.exception
    assert "Showing 40 of 100 points (stratified random sample)" in _texts(at)


def test_hover_thumbnails_stop_at_their_limit_and_say_so(monkeypatch):
    at = _submit(_page(), "digits", per_class=10)
    assert "Thumbnails on hover up to" not in _texts(at)
    monkeypatch.setattr(scatter_view, "MAX_HOVER_THUMBNAILS", 50)
    monkeypatch.setattr("components.hover_images.MAX_IMAGES", 50)
    at = _submit(_page(), "digits", per_class=10)
    assert not at.exception
    assert "Thumbnails on hover up to 50 points; click or lasso for images." in _texts(at)


def test_each_point_carries_its_row_and_name_and_its_trace_the_class_and_split():
    labels = np.array(["b", "a", "b", "a", "c", "a"])
    is_test = np.array([False, True, True, False, False, False])
    coords = np.arange(12, dtype=np.float64).reshape(6, 2)
    names = np.array(list("uvwxyz"))
    fig, trace_index = charts.scatter_figure(coords, labels, names, is_test, np.arange(6))
    described = [(t.name, t.hovertemplate.split("<br>")[-1].split("<")[0], rows.tolist()) for t, rows in
                 zip(fig.data, trace_index, strict=True)]  # fmt: skip
    assert described == [("a", "train", [3, 5]), ("a", "held-out", [1]), ("b", "train", [0]),
                         ("b", "held-out", [2]), ("c", "train", [4])]  # fmt: skip
    assert [t.showlegend for t in fig.data] == [True, False, True, False, True]  # one legend entry per class
    assert len({t.marker.color for t in fig.data if t.legendgroup == "a"}) == 1
    for trace, rows in zip(fig.data, trace_index, strict=True):
        assert trace.hovertemplate.startswith(f"<b>{trace.name}</b><br>%{{hovertext}}<br>")
        assert trace.customdata.tolist() == rows.tolist() and trace.customdata.dtype == np.int32
        assert trace.hovertext.tolist() == names[rows].tolist()
        assert np.array_equal(np.column_stack([trace.x, trace.y]), coords[rows]) and trace.x.dtype == np.float32


def test_the_100k_point_figure_is_lighter_than_plain_plotly_express():
    """Per point only float32 coordinates, an int32 row and the file name travel (no string columns), so the
    figure's JSON is smaller than `px.scatter`'s with colour and hover name on the same points."""
    from bench.pairs_embed import scatter_points

    coords, labels, names, is_test = scatter_points(100_000)
    fig, _ = charts.scatter_figure(coords, labels, names, is_test, np.arange(len(coords)))
    plain = px.scatter(x=coords[:, 0], y=coords[:, 1], color=labels, hover_name=names, render_mode="webgl")
    assert len(fig.to_json()) < 0.9 * len(plain.to_json())


def test_a_one_axis_projection_is_drawn_as_a_strip():
    coords = np.array([[0.5], [1.5], [-2.0]], np.float32)  # LDA of two classes: one component
    fig, _ = charts.scatter_figure(
        coords, np.array(["a", "b", "a"]), np.array(list("xyz")), np.zeros(3, bool), np.arange(3)
    )
    xs = np.concatenate([trace.x for trace in fig.data])
    ys = np.concatenate([trace.y for trace in fig.data])
    assert sorted(xs.tolist()) == [-2.0, 0.5, 1.5] and np.all(np.abs(ys) <= 1)
    assert fig.layout.yaxis.title.text.startswith("random spread")


def _blob_result(n_per_class: int = 20):
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["a", "b", "c"]), n_per_class)
    X = (rng.normal(size=(3, 16))[np.searchsorted(["a", "b", "c"], y)] * 4 + rng.normal(size=(len(y), 16))).astype(
        np.float32
    )
    images = ImageSet([ImageItem(f"im{i}.png", np.zeros((2, 2, 3), np.uint8), label) for i, label in enumerate(y)])
    return images, X, compute_projection(X, y)


def test_export_table_has_coordinates_labels_and_held_out_predictions():
    images, _, result = _blob_result()
    table = pd.read_csv(io.StringIO(export_table(images, {"clip_tiny@random": result}).to_csv(index=False)))
    assert list(table.columns) == [
        "file", "label", "split", "clip_tiny_x", "clip_tiny_y", "clip_tiny_predicted", "clip_tiny_knn_predicted"
    ]  # fmt: skip
    np.testing.assert_allclose(table[["clip_tiny_x", "clip_tiny_y"]].to_numpy(), result.coords, rtol=1e-5)
    test_rows = table["split"] == "held-out"
    assert np.array_equal(test_rows.to_numpy(), result.is_test)
    assert list(table.loc[test_rows, "clip_tiny_predicted"]) == list(result.predictions)
    assert table.loc[~test_rows, "clip_tiny_predicted"].isna().all()


def test_embeddings_npz_round_trips():
    images, X, _ = _blob_result()
    saved = np.load(io.BytesIO(embeddings_npz(images, {"clip_tiny@random": X})))
    assert np.array_equal(saved["clip_tiny@random"], X)
    assert list(saved["names"]) == images.names and list(saved["labels"]) == images.labels


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (None, []),
        ({"selection": {"points": []}}, []),
        (_selection((1, 0), (0, 2), (1, 0)), [2, 7]),  # repeats collapse, rows sorted
        (_selection((5, 0)), []),  # a curve that is not a class trace (stale event) is ignored
    ],
)
def test_selected_indices_maps_curves_and_points_to_rows(event, expected):
    trace_index = [np.array([4, 5, 7]), np.array([2, 3])]
    assert selected_indices(event, trace_index).tolist() == expected


def _accuracy(at: AppTest):
    return next(d for d in at.dataframe if d.value.index.name == "model")


def test_accuracy_cells_are_numbers_or_blank_never_none():
    other = {("LDA 2-D", "Other model", "Elsewhere (n=40)"): (0.5, 0.25)}  # a model only run on another dataset
    at = _submit(_page(scatter_accuracy=other), "digits", per_class=10)
    table = _accuracy(at)
    assert table.value.loc["Other model"].isna().sum() == 2 and table.value.loc["CLIP tiny (test)"].isna().sum() == 2
    assert table.proto.HasField("placeholder") and table.proto.placeholder == ""  # shown blank, not "None"
    assert "A blank cell: that model was not run on that dataset" in _texts(at)

    at.selectbox(key="scatter_method").set_value("tsne")
    at = at.button(key="scatter_go").click().run()
    values = _accuracy(at).value
    assert [c.split(" · ")[1] for c in values.columns] == ["k-NN"] and not values.isna().any(axis=None)
    assert "no projection accuracy column" in _texts(at)


def test_projection_notes_count_in_words():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 8)).astype(np.float32), np.repeat(np.array(["a", "b"]), 20)
    assert "LDA limited to 1 component (2 classes)." in compute_projection(X, y, "lda").notes


def test_datasets_that_need_a_download_say_so_in_the_option_until_they_are_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("VFM_LENS_CACHE", str(tmp_path))
    options = _page().radio(key="scatter_dataset").options
    assert "CIFAR-10 (needs the network once)" in options and "Caltech-101 (needs the network once)" in options
    assert "Digits (scikit-learn)" in options  # ships with scikit-learn
    (tmp_path / "datasets" / "cifar-10-batches-py").mkdir(parents=True)  # torchvision's folder, as after a download
    options = _page().radio(key="scatter_dataset").options
    assert "CIFAR-10" in options and "Caltech-101 (needs the network once)" in options


def _ancestors(node, key: str, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The block types from the page's root down to the widget with `key` (None when it is not there)."""
    if getattr(node, "key", None) == key:
        return path
    for child in getattr(node, "children", {}).values():
        if (found := _ancestors(child, key, (*path, node.type))) is not None:
            return found
    return None


def test_the_model_picker_has_a_full_width_row_so_its_chips_stay_in_view():
    at = _page()
    assert _ancestors(at.main, "scatter_families") == ("main", "form")  # not squeezed into a third of the form
