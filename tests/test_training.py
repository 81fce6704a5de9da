"""training: data sampling, configs, a short run that learns, exact resume, GAN stage, export parity."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.config import DataConfig, GanConfig, PixelConfig, TrainConfig, load_config  # noqa: E402
from training.data import CropSampler, load_folders  # noqa: E402
from training.degrade import DegradeConfig, degrade, h264_roundtrip  # noqa: E402
from training.train import Trainer, cosine_schedule  # noqa: E402
from vsr.colour import bicubic_up  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small smooth RGB images (and one gray) as PNGs: a stand-in training/validation set."""
    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    for i in range(4):
        coarse = (rng.random((6, 6, 3)) * 255).astype(np.float32)
        img = cv2.resize(coarse, (64 + 4 * i, 60), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"im{i}.png"), np.clip(img, 0, 255).astype(np.uint8))
    cv2.imwrite(str(folder / "gray.png"), np.full((48, 52), 90, np.uint8))
    return folder


def _config(image_dir: Path, run_dir: Path, **pixel: object) -> TrainConfig:
    return TrainConfig(
        model="fast",
        run_dir=str(run_dir),
        threads=2,
        log_every=2,
        val_every=1000,
        ckpt_every=3,
        keep_ckpts=5,
        data=DataConfig(train=(str(image_dir),), val=str(image_dir), patch=8, batch=4),
        pixel=PixelConfig(**{"steps": 40, "lr": 3e-3, "warmup": 2, **pixel}),  # type: ignore[arg-type]
    )


def test_all_shipped_configs_parse() -> None:
    names = {p.stem for p in CONFIGS.glob("*.toml")}
    assert {"fast", "compact", "srresnet", "srgan"} <= names
    for path in CONFIGS.glob("*.toml"):
        cfg = load_config(path)
        assert cfg.model in (path.stem.split("_")[0], path.stem.replace("_", "-")) and cfg.total_steps > 0
    assert load_config(CONFIGS / "srgan.toml").gan.steps > 0


def test_unknown_config_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('model = "fast"\n[pixel]\nstpes = 3\n')
    with pytest.raises(ValueError, match=r"stpes.*\[pixel\]"):
        load_config(tmp_path / "bad.toml")


def test_cosine_schedule() -> None:
    f = cosine_schedule(warmup=10, steps=110, lr=1e-3, lr_min=1e-5)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) * 1e-3 == pytest.approx((1e-3 + 1e-5) / 2)
    assert f(110) * 1e-3 == pytest.approx(1e-5) and f(500) * 1e-3 == pytest.approx(1e-5)
    wsd = cosine_schedule(warmup=10, steps=110, lr=1e-3, lr_min=1e-5, decay_start=90)
    assert wsd(50) == wsd(90) == 1.0 and wsd(100) * 1e-3 == pytest.approx((1e-3 + 1e-5) / 2)


def test_sampler_shapes_alignment_and_resume(image_dir: Path) -> None:
    images = load_folders([image_dir])
    by_name = {im.name: im for im in images}
    assert len(images) == 5 and by_name["im0.png"].lr.shape == (15, 16, 3)
    assert by_name["gray.png"].hr.shape == (48, 52, 3)  # gray files become R = G = B
    sampler = CropSampler(images, patch=8, seed=3)
    b = sampler.batch(6)
    assert b["lr"].shape == (6, 1, 8, 8) and b["hr"].shape == b["base"].shape == (6, 1, 32, 32)
    assert all(v.dtype == np.float32 for v in b.values())
    assert b["hr"].min() >= 16 / 255 - 1e-4 and b["hr"].max() <= 235 / 255 + 1e-4
    # the base is the cv2 bicubic of the whole-image LR luma, cut at the aligned position
    im = by_name["im1.png"]
    np.testing.assert_allclose(bicubic_up(im.lr_y, 4)[8:40, 4:36], im.base_y[8:40, 4:36])
    state = sampler.state_dict()
    first = sampler.batch(3)
    sampler.load_state_dict(state)
    again = sampler.batch(3)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    rgb = CropSampler(images, patch=8, colour="rgb", seed=3).batch(2)
    assert rgb["lr"].shape == (2, 3, 8, 8) and rgb["hr"].shape == (2, 3, 32, 32) and "base" not in rgb


def test_device_crops_equal_host_crops(image_dir: Path) -> None:
    """batch_on (crops cut as tensor ops, the GPU path) draws and returns exactly what batch does."""
    images = load_folders([image_dir])
    for colour in ("y", "rgb"):
        host = CropSampler(images, patch=8, colour=colour, seed=5)
        dev = CropSampler(images, patch=8, colour=colour, seed=5)
        for _ in range(3):
            a, b = host.batch(6), dev.batch_on(6, torch.device("cpu"))
            assert set(a) == set(b)
            for key in a:
                assert b[key].dtype == torch.float32 and np.array_equal(a[key], b[key].numpy()), (colour, key)
        assert host.state_dict() == dev.state_dict()


def test_init_from_a_smaller_relative_loads_the_matching_layers() -> None:
    from training.train import init_matching
    from vsr.models.catalogue import new_network

    torch.manual_seed(0)
    parent, child = new_network("fast"), new_network("fast-lite")
    left = init_matching(child, parent.state_dict())
    assert left == ["body.6.bias", "body.6.weight"]  # the output conv: 32 -> 16 in both, but a new place
    assert torch.equal(child.body[2].weight, parent.body[2].weight)
    with pytest.raises(ValueError, match="no tensor"):
        init_matching(child, {"x": torch.zeros(1)})


def test_init_deepened_starts_as_the_parent_and_can_then_learn() -> None:
    from training.train import init_deepened
    from vsr.models.catalogue import new_network

    torch.manual_seed(0)
    parent, child = new_network("fast").eval(), new_network("fast-plus")
    # a parent with negative PReLU slopes and non-zero biases, so identity layers are really tested
    with torch.no_grad():
        for p in parent.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    inserted = init_deepened(child, parent.state_dict())
    # fast's output conv moves from body.8 to body.14; body.8, 10, 12 (+ their PReLUs) are new
    assert inserted == [
        n for c in (8, 10, 12) for n in (f"body.{c}.weight", f"body.{c}.bias", f"body.{c + 1}.weight")
    ]
    assert torch.equal(child.body[14].weight, parent.body[8].weight)
    x = torch.rand(2, 1, 24, 20) - 0.3
    with torch.no_grad():
        assert torch.allclose(child.eval()(x), parent(x), atol=1e-6)
    # the inserted layers are ordinary parameters: one gradient step moves the output
    child.train()
    loss = child(x).square().mean()
    loss.backward()
    assert child.body[8].weight.grad is not None and child.body[8].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="not a shallower FastNet"):
        init_deepened(new_network("fast-tiny"), parent.state_dict())
    with pytest.raises(ValueError, match="not a shallower FastNet"):  # not a FastNet at all
        init_deepened(new_network("fast-plus"), new_network("srresnet").state_dict())


def test_time_budget_fits_the_schedule_and_survives_resume(image_dir: Path, tmp_path: Path) -> None:
    cfg = replace(_config(image_dir, tmp_path / "a", steps=10_000_000, warmup=20), val_every=50)
    trainer = Trainer(cfg)
    # only the 10 calibration steps run; 600 s fits >= 100 steps even on a loaded 2-core machine
    steps = trainer.fit_to_budget(600.0, calibration=10)
    assert trainer.step == 10 and 10 < steps < 10_000_000 and steps % 100 == 0
    assert trainer.cfg.pixel.steps == steps == trainer.budget_steps
    # the cosine now ends at the fitted step: lr_min there, the peak just after warm-up
    factor = trainer.sched.lr_lambdas[0]
    assert factor(steps) * cfg.pixel.lr == pytest.approx(cfg.pixel.lr_min) and factor(20) == 1.0
    trainer.run(until=12)
    resumed = Trainer(replace(cfg, run_dir=str(tmp_path / "b")))
    assert resumed.resume(tmp_path / "a" / "step_0000012.pt")
    assert resumed.cfg.pixel.steps == steps and resumed.sched.lr_lambdas[0](steps) == factor(steps)
    assert resumed.train_step()["loss"] == trainer.train_step()["loss"]


def test_degradations_change_the_image() -> None:
    rng = np.random.default_rng(0)
    img = cv2.resize((rng.random((5, 5, 3)) * 255).astype(np.uint8), (33, 27), interpolation=cv2.INTER_CUBIC)
    cfg = DegradeConfig(blur_p=1.0, noise_p=1.0, chroma_p=1.0, jpeg_p=1.0)
    out = degrade(img, cfg, rng)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    assert not DegradeConfig().enabled and cfg.enabled
    frames = h264_roundtrip([img, img], crf=30)
    assert len(frames) == 2 and frames[0].shape == img.shape
    assert np.abs(frames[0].astype(int) - img).mean() < 20  # lossy, but the same picture


def test_short_run_lowers_the_loss(image_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(_config(image_dir, tmp_path / "run"))
    losses = [trainer.train_step()["loss"] for _ in range(40)]
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:4])
    assert trainer.step == 40


def test_pixel_run_reaches_its_end(image_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(replace(_config(image_dir, tmp_path / "run", steps=4), val_every=2))
    trainer.run()
    rows = trainer.runlog.rows()
    assert trainer.step == 4 and (tmp_path / "run" / "step_0000004.pt").is_file()
    assert [r["step"] for r in rows if r["val_psnr"]] == ["2", "4"] and {r["stage"] for r in rows} == {"1"}


def test_resume_is_bit_identical(image_dir: Path, tmp_path: Path) -> None:
    cfg = _config(image_dir, tmp_path / "a", switch_at=0.1)  # L1 -> MSE inside the run
    full = Trainer(cfg)
    full.run(until=6)
    ckpt = tmp_path / "a" / "step_0000003.pt"
    assert ckpt.is_file() and (tmp_path / "a" / "log.csv").is_file()
    resumed = Trainer(replace(cfg, run_dir=str(tmp_path / "b")))
    assert resumed.resume(ckpt) and resumed.step == 3
    resumed.run(until=6)
    for name in ("net", "ema"):
        a, b = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert full.train_step()["loss"] == resumed.train_step()["loss"]
    assert full.opt.state_dict()["state"][0]["step"] == resumed.opt.state_dict()["state"][0]["step"]


def test_validation_uses_the_protocol(image_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(_config(image_dir, tmp_path / "run"))
    res = trainer.validate()
    assert res["images"] == 5 and np.isfinite(res["psnr_y"]) and res["backend"].startswith("torch")


def test_gan_stage_runs_and_logs(image_dir: Path, tmp_path: Path) -> None:
    cfg = replace(
        _config(image_dir, tmp_path / "gan", steps=2),
        gan=GanConfig(steps=2, content_weight=0.0, pixel_weight=1.0, adv_weight=1e-2),
        data=DataConfig(train=(str(image_dir),), val=str(image_dir), patch=5, batch=2),
    )
    trainer = Trainer(cfg)
    trainer.run()
    rows = trainer.runlog.rows()
    assert trainer.step == 4 and [r["stage"] for r in rows if r["loss"]][-1] == "2"
    assert np.isfinite(float(rows[-2]["d_loss"] or rows[-1]["d_loss"] or "nan"))
    assert (tmp_path / "gan" / "curves.png").is_file()
    with pytest.raises(FileNotFoundError, match="vgg_weights"):
        Trainer(replace(cfg, gan=GanConfig(steps=2)))


def test_export_weights_and_onnx_parity(
    image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    from training.export import export_checkpoint
    from vsr.backends import create_backend
    from vsr.models.catalogue import build_model

    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "cache"))
    trainer = Trainer(_config(image_dir, tmp_path / "run"))
    trainer.run(until=3)
    res = export_checkpoint(
        tmp_path / "run" / "step_0000003.pt", "fast", out_dir=tmp_path / "w", eval_data=[image_dir]
    )
    assert res["parity"] < 1e-3 and len(res["sha256"]) == 64 and res["macs"] == pytest.approx(38_064)
    net = build_model("fast", weights=Path(res["weights"]))
    assert all(torch.equal(v, trainer.ema.state_dict()[k]) for k, v in net.state_dict().items())
    card = Path(res["card"]).read_text()
    assert res["sha256"] in card and "Y-PSNR" in card
    frames = np.random.default_rng(0).integers(0, 256, (2, 19, 23, 3), dtype=np.uint8)
    via_torch = create_backend("torch", "fast", net=net).infer(frames).astype(int)
    via_onnx = create_backend("onnx", "fast", net=net).infer(frames).astype(int)
    assert np.abs(via_torch - via_onnx).max() <= 1
