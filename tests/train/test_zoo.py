import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from segrt.app.cli import main  # noqa: E402

RECIPE = """model: fastscnn
input_width: 128
input_height: 96
epochs: 1
batch_size: 4
warmup_epochs: 1
eval_every: 1
threads: 2
"""


def test_zoo_builds_trains_ships_measures_and_writes_the_table(tiny_camvid, tmp_path, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE)
    doc = tmp_path / "zoo.md"  # the repository's is docs/zoo.md
    doc.write_text("# x\n<!-- zoo:start -->\nold\n<!-- zoo:end -->\ntail\n")
    dirs = {k: tmp_path / k for k in ("runs", "zoo", "results")}
    main(["zoo", str(recipe), "--data-root", str(tiny_camvid), "--runs", str(dirs["runs"]),
          "--zoo-dir", str(dirs["zoo"]), "--results", str(dirs["results"]), "--doc", str(doc)])
    row = json.loads((dirs["results"] / "zoo_tiny_camvid.json").read_text())
    assert row["params"] > 1e6 and row["gflops"] > 0 and 0 <= row["miou"] <= 1
    assert row["cpu_latency"]["p50_ms"] > 0 and len(row["per_class_iou"]) == 11
    assert (dirs["zoo"] / "tiny_camvid.pt").stat().st_size / 1e6 == pytest.approx(row["fp16_mb"], abs=0.01)
    text = doc.read_text()
    assert "old" not in text and "| tiny_camvid |" in text and text.endswith("<!-- zoo:end -->\ntail\n")
    # a second build reuses the trained run instead of training again
    main(["zoo", str(recipe), "--data-root", str(tiny_camvid), "--runs", str(dirs["runs"]),
          "--zoo-dir", str(dirs["zoo"]), "--results", str(dirs["results"]), "--no-train"])
    assert "tiny_camvid" in capsys.readouterr().out
    # a second stage (init_from the first run's best.pt) ships under the first stage's name and
    # counts the epochs and time of both stages
    stage2 = tmp_path / "tiny_ft.yaml"
    stage2.write_text(f"name: tiny_camvid\ninit_from: {dirs['runs'] / 'tiny_camvid' / 'best.pt'}\n{RECIPE}")
    main(["zoo", str(stage2), "--data-root", str(tiny_camvid), "--runs", str(dirs["runs"]),
          "--zoo-dir", str(dirs["zoo"]), "--results", str(dirs["results"])])
    row = json.loads((dirs["results"] / "zoo_tiny_camvid.json").read_text())
    assert [s["epochs"] for s in row["stages"]] == [1, 1] and row["epochs"] == 2
    assert row["recipe"] == str(stage2) and (dirs["runs"] / "tiny_ft_camvid" / "best.pt").exists()
    assert "| tiny_camvid |" in capsys.readouterr().out and "1+1 ep" in (dirs["results"] / "zoo.md").read_text()
    # 'ship: last' ships last.pt instead of best.pt (here made distinguishable by its epoch)
    from segrt.train import checkpoint

    run = dirs["runs"] / "tiny_ft_camvid"
    checkpoint.save(run / "last.pt", {**checkpoint.load(run / "best.pt"), "epoch": 99})
    stage2.write_text(stage2.read_text() + "ship: last\n")
    main(["zoo", str(stage2), "--data-root", str(tiny_camvid), "--runs", str(dirs["runs"]),
          "--zoo-dir", str(dirs["zoo"]), "--results", str(dirs["results"]), "--no-train"])
    assert checkpoint.load(dirs["zoo"] / "tiny_camvid.pt")["epoch"] == 99
    # export_width/height: the ONNX is exported and measured at that size, the checkpoint keeps its own
    stage2.write_text(stage2.read_text() + "export_width: 160\nexport_height: 128\n")
    main(["zoo", str(stage2), "--data-root", str(tiny_camvid), "--runs", str(dirs["runs"]),
          "--zoo-dir", str(dirs["zoo"]), "--results", str(dirs["results"]), "--no-train"])
    row = json.loads((dirs["results"] / "zoo_tiny_camvid.json").read_text())
    manifest = json.loads((run / "tiny_camvid.json").read_text())
    assert row["input"] == [160, 128] and [manifest["preprocess"][k] for k in ("width", "height")] == [160, 128]
    assert checkpoint.load(dirs["zoo"] / "tiny_camvid.pt")["preprocess"]["width"] == 128


def test_every_zoo_recipe_loads_and_fits_the_weight_budget():
    from pathlib import Path

    from segrt.config import load_config
    from segrt.train.config import TrainConfig
    from segrt.train.models import build_model

    recipes = sorted((Path(__file__).resolve().parents[2] / "configs" / "zoo").glob("*.yaml"))
    assert len(recipes) == 7
    total_mb = 0.0
    for path in recipes:
        cfg = load_config(path, TrainConfig)
        net = build_model(cfg.model, num_classes=11, **cfg.model_args)
        total_mb += sum(p.numel() for p in net.parameters()) * 2 / 1e6  # FP16 bytes
    assert total_mb <= 60.0 - 15.0  # room left for the shipped ONNX files


def test_every_cpu_recipe_loads_and_builds():
    """configs/zoo_cpu: each recipe is a valid config whose model builds (weights left out:
    a recipe may start from a run's checkpoint that only the machine that trained it has)."""
    from pathlib import Path

    from segrt.config import load_config
    from segrt.train.config import TrainConfig
    from segrt.train.models import build_model

    root = Path(__file__).resolve().parents[2]
    recipes = sorted((root / "configs" / "zoo_cpu").glob("*.yaml"))
    rebuild = (root / "benchmarks" / "checkpoints" / "README.md").read_text()  # how runs/soup/ is made
    assert len(recipes) >= 16
    for path in recipes:
        cfg = load_config(path, TrainConfig)
        build_model(cfg.model, num_classes=11, **cfg.model_args)
        if cfg.distill_from:  # a teacher is a shipped model, what another recipe here trains, or a
            teacher = Path(cfg.distill_from)  # soup or rebuilt teacher whose command is written down
            made_here = teacher.parts[:2] == ("runs", "zoo_cpu") and any(
                teacher.parts[2] == f"{r.stem}_{load_config(r, TrainConfig).dataset}" for r in recipes)
            written = f"-o {cfg.distill_from}" in rebuild
            souped = teacher.parts[:2] in (("runs", "soup"), ("runs", "teacher")) and written
            assert made_here or souped or (root / teacher).is_file(), path


def test_shipped_weights_fit_the_zoo_budget():
    from pathlib import Path

    from segrt.app.zoo_build import BUDGET_MB, shipped_megabytes

    zoo = Path(__file__).resolve().parents[2] / "segrt" / "zoo"
    assert 0 < shipped_megabytes(zoo) <= BUDGET_MB


def test_training_stages_follow_init_from_back_and_keep_the_first_encoder_init(tmp_path):
    """A later stage that names no ``pretrained`` (its init_from holds every weight) is still
    reported with the encoder init of the stage that named one."""
    from segrt.app.zoo_build import training_stages

    configs = {"a": {"pretrained": "imagenet"}, "b": {"init_from": str(tmp_path / "a" / "best.pt")},
               "c": {"init_from": str(tmp_path / "b" / "best.pt")}}
    for i, (name, config) in enumerate(configs.items()):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.csv").write_text("epoch,seconds\n" + "".join(f"{e},{10 * (i + 1)}\n"
                                                                               for e in range(i + 1)))
        torch.save({"config": config}, tmp_path / name / "best.pt")
    stages = training_stages(tmp_path / "c", configs["c"]["init_from"])
    assert [(st["epochs"], st["seconds"], st.get("pretrained")) for st in stages] == [
        (1, 10, "imagenet"), (2, 40, None), (3, 90, None)]


def test_zoo_rows_take_the_dev_check_figure_of_their_shipped_file(tmp_path):
    import json

    from segrt.app.zoo_build import all_rows

    (tmp_path / "zoo_a_camvid.json").write_text(json.dumps({"name": "a_camvid", "miou": 0.7}))
    (tmp_path / "zoo_b_camvid.json").write_text(json.dumps({"name": "b_camvid", "miou": 0.6}))
    (tmp_path / "devcheck_shipped.json").write_text(json.dumps({"models": [
        {"model": "a_camvid.int8.onnx", "dev_check_miou": 51.2},
        {"model": "a_camvid_352x256.int8.onnx", "dev_check_miou": 40.0}]}))
    rows = {r["name"]: r for r in all_rows(tmp_path, [])}
    assert rows["a_camvid"]["dev_check"] == 51.2 and "dev_check" not in rows["b_camvid"]


def test_zoo_refuses_a_doc_without_markers_before_any_work(tmp_path, capsys):
    """--doc is checked before training starts (a build can take hours)."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE)
    doc = tmp_path / "zoo.md"
    doc.write_text("# no markers\n")
    with pytest.raises(SystemExit) as exc:
        main(["zoo", str(recipe), "--runs", str(tmp_path / "runs"), "--zoo-dir", str(tmp_path / "zoo"),
              "--results", str(tmp_path / "results"), "--doc", str(doc)])
    assert exc.value.code == 2 and "zoo:start" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and doc.read_text() == "# no markers\n"


def test_the_repository_zoo_page_has_the_generated_table():
    """`segrt zoo --doc docs/zoo.md` writes between these markers; the README keeps a short table."""
    from pathlib import Path

    from segrt.app.zoo_build import ZOO_END, ZOO_START

    repo = Path(__file__).resolve().parents[2]
    page = (repo / "docs" / "zoo.md").read_text()
    assert page.count(ZOO_START) == 1 and page.count(ZOO_END) == 1
    assert "| fpn_lite0_camvid |" in page.split(ZOO_START, 1)[1].split(ZOO_END, 1)[0]
    assert ZOO_START not in (repo / "README.md").read_text()
