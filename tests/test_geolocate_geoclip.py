"""GeoCLIP's published weights: geoaware's model against the geoclip package's own code."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from geoaware.errors import DependencyNotFoundError, InputFileError
from geoaware.vision.embeddings import EmbeddingInfo, write_embeddings

torch = pytest.importorskip("torch")
if importlib.util.find_spec("geoclip") is None:
    pytest.skip("pip install --no-deps geoclip", allow_module_level=True)
pytest.importorskip("transformers")  # `import geoclip` needs it

from geoaware.geolocate.gallery import GalleryGeolocator  # noqa: E402
from geoaware.geolocate.geoclip import (  # noqa: E402
    GeoClipLocationEncoder,
    geoclip_files,
    geoclip_image_mlp,
    load_geoclip_weights,
)

SUBSET = 3000  # the first gallery points: enough to rank, quick to encode on a CPU


@pytest.fixture(scope="module")
def package() -> SimpleNamespace:
    """The geoclip package's own location encoder, image MLP and logit scale."""
    import geoclip

    files = geoclip_files()
    mlp = torch.nn.Sequential(torch.nn.Linear(768, 768), torch.nn.ReLU(), torch.nn.Linear(768, 512))
    mlp.load_state_dict(torch.load(files["image_mlp"], weights_only=True))
    return SimpleNamespace(
        module=geoclip,
        location_encoder=geoclip.LocationEncoder().eval(),
        image_encoder=mlp.eval(),
        logit_scale=torch.nn.Parameter(torch.load(files["logit_scale"], weights_only=True)),
        gallery=geoclip.model.misc.load_gps_data(str(files["gallery"])),
    )


def _queries(n: int, seed: int = 0) -> np.ndarray:
    # CLIP ViT-L/14 image features are not unit length; keep a realistic scale.
    return (np.random.default_rng(seed).normal(size=(n, 768)) * 0.6).astype(np.float32)


def test_location_features_equal_the_package(package: SimpleNamespace) -> None:
    ours = GeoClipLocationEncoder().eval()
    load_geoclip_weights(ours, geoclip_image_mlp(), torch.nn.Parameter(torch.tensor(0.0)))
    rng = np.random.default_rng(3)
    random_points = np.column_stack([rng.uniform(-90, 90, 500), rng.uniform(-180, 180, 500)])
    points = torch.cat([package.gallery[:1000], torch.from_numpy(random_points.astype(np.float32))])
    with torch.inference_mode():
        a, b = ours(points), package.location_encoder(points)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=0)


def test_gallery_probabilities_equal_the_package_prediction(package: SimpleNamespace) -> None:
    gallery = package.gallery[:SUBSET]
    model = GalleryGeolocator.geoclip(
        gallery[:, 0].double().numpy(), gallery[:, 1].double().numpy()
    )
    x = _queries(6)
    preds = model.predict(x, k=5)
    with torch.inference_mode():
        # GeoCLIP.forward and the softmax/top-k of GeoCLIP.predict, as the package runs them.
        logits = package.module.GeoCLIP.forward(package, torch.from_numpy(x), gallery)
        top = torch.topk(logits.softmax(dim=-1), 5, dim=1)
    np.testing.assert_allclose(preds.cand_score, top.values.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(preds.cand_lat, gallery[top.indices, 0].double().numpy())
    np.testing.assert_array_equal(preds.cand_lon, gallery[top.indices, 1].double().numpy())


def test_pinned_predictions() -> None:
    from geoaware.sources.gallery import read_gps_gallery

    g = read_gps_gallery(geoclip_files()["gallery"])
    lat, lon = g.column("lat").to_numpy()[:SUBSET], g.column("lon").to_numpy()[:SUBSET]
    preds = GalleryGeolocator.geoclip(lat, lon).predict(_queries(3, seed=7), k=2)
    got = np.column_stack([preds.cand_lat[:, 0], preds.cand_lon[:, 0]]).round(4).tolist()
    assert got == PINNED_TOP1
    np.testing.assert_allclose(preds.cand_score[:, 0], PINNED_P1, atol=1e-5)


# Recorded from this code once it matched the package (test above); guards regressions.
PINNED_TOP1 = [[50.9859, 5.0503], [53.4849, -2.2414], [51.6773, 9.606]]
PINNED_P1 = [0.038899, 0.049423, 0.060181]


def _catalog(tmp: Path, n: int) -> tuple[Path, Path]:
    import pyarrow as pa

    from geoaware.catalog import write_catalog

    rng = np.random.default_rng(5)
    ids = [f"i{k}" for k in range(n)]
    lat = rng.uniform(-40, 60, n)
    lon = rng.uniform(-120, 140, n)
    write_catalog(
        pa.table(
            {
                "source": ["s"] * n,
                "image_id": ids,
                "lat": lat,
                "lon": lon,
                "split": ["train"] * (n - 8) + ["test"] * 8,
            }
        ),
        tmp / "cat.parquet",
    )
    write_embeddings(
        tmp / "emb.parquet",
        ids,
        _queries(n, seed=9),
        EmbeddingInfo("hf:openai/clip-vit-large-patch14", 768, dtype="float32"),
    )
    return tmp / "cat.parquet", tmp / "emb.parquet"


def test_fit_init_geoclip_starts_from_the_published_weights(tmp_path: Path) -> None:
    from geoaware.geolocate.model import fit_geolocator, load_geolocator, save_geolocator

    rng = np.random.default_rng(4)
    x = _queries(64, seed=4)
    lat, lon = rng.uniform(-50, 60, 64), rng.uniform(-150, 150, 64)
    g_lat, g_lon = lat[:40], lon[:40]
    base = GalleryGeolocator.geoclip(g_lat, g_lon).predict(x, k=3)
    still = fit_geolocator(
        "gallery",
        x,
        lat,
        lon,
        init="geoclip",
        lr=1e-12,
        epochs=1,
        batch_size=32,
        gallery_lat=g_lat,
        gallery_lon=g_lon,
    )
    p = still.predict(x, k=3)
    np.testing.assert_allclose(p.cand_score, base.cand_score, atol=1e-5)
    np.testing.assert_array_equal(p.cand_lat, base.cand_lat)
    tuned = fit_geolocator(
        "gallery",
        x,
        lat,
        lon,
        init="geoclip",
        epochs=4,
        batch_size=32,
        gps_noise_km=0.0,
        gallery_lat=g_lat,
        gallery_lon=g_lon,
    )
    assert isinstance(tuned, GalleryGeolocator)
    assert tuned.config.lr == 3e-5 and tuned.training["losses"][-1] < tuned.training["losses"][0]
    again = load_geolocator(save_geolocator(tuned, tmp_path / "ft"))
    np.testing.assert_allclose(again.predict(x, k=3).cand_score, tuned.predict(x, k=3).cand_score)
    with pytest.raises(ValueError, match="768"):
        fit_geolocator("gallery", x[:, :512], lat, lon, init="geoclip", epochs=1)


def test_predict_geoclip_refuses_other_encoders_before_loading(tmp_path: Path) -> None:
    from geoaware.geolocate.model import predict_from_files

    write_embeddings(
        tmp_path / "e.parquet", ["a"], np.ones((1, 512)), EmbeddingInfo("hf:google/siglip", 512)
    )
    with pytest.raises(InputFileError, match="clip-vit-large-patch14"):
        predict_from_files("geoclip", tmp_path / "e.parquet", tmp_path / "p.csv")


def test_missing_package_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DependencyNotFoundError, match="pip install --no-deps geoclip"):
        geoclip_files()


@pytest.mark.slow
def test_cli_predict_geoclip_then_eval_geo(tmp_path: Path) -> None:
    """The whole published gallery (100K points): predictions that eval geo reads as they are."""
    from geoaware.cli import app

    catalog, emb = _catalog(tmp_path, 24)
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "geolocate",
            "predict",
            "geoclip",
            str(emb),
            "--catalog",
            str(catalog),
            "--split",
            "test",
            "--out",
            str(tmp_path / "pred.csv"),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert result["predicted"] == 8 and result["k"] == 5
    assert result["overlap"]["gallery"]["n_reference"] == 100_000
    r = runner.invoke(
        app, ["eval", "geo", str(tmp_path / "pred.csv"), "--truth", str(catalog), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["n"] == 8
