"""Training (merlib.training) and the multimodal dataset (merlib.datasets).

Most mechanics run on a toy data module (tones whose pitch gives the class, plus random "video") so they take
seconds; the dataset tests and one integration run use a small build of the quick synthetic corpus. The
interruption and DDP tests start separate processes that import this file for the toy data
(``python -c "import test_training"`` with ``tests/`` on the path).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from argparse import ArgumentParser
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from merlib.cli import add_train_parser
from merlib.errors import OutputError
from merlib.models.checkpoints import load_reference_checkpoint
from merlib.models.htsat import AudioOutput
from merlib.training import (
    EmotionModule,
    TrainConfig,
    average_checkpoints,
    average_state_dicts,
    config_from_args,
    load_final,
    read_summary,
    reference_lr_multiplier,
    resolve_launch,
    train,
)

TESTS = Path(__file__).parent
PYTHON = sys.executable


# ----------------------------------------------------------------------------------------- toy data


class ToyClips(Dataset):
    """Clips whose class is the pitch of a tone (200 + 100·label Hz) in noise; video is noise + a label tint."""

    def __init__(self, n: int, num_mics: int = 1, seed: int = 0, delay: float = 0.0, video: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % 8
        t = torch.arange(64000) / 16000
        tone = torch.sin(2 * torch.pi * (200 + 100 * self.labels.float())[:, None] * t)
        self.waveforms = (tone[:, None].repeat(1, num_mics, 1) + 0.1 * torch.randn(n, num_mics, 64000, generator=g))
        self.video = (torch.randn(n, 3, 4, 32, 32, generator=g) + 0.2 * self.labels.view(n, 1, 1, 1, 1)) if video else None
        self.delay = delay

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        if self.delay:
            time.sleep(self.delay)  # makes epochs last long enough to interrupt one
        item = {"waveform": self.waveforms[i].float(), "label": int(self.labels[i]), "actor": 1 + i % 2,
                "clip_id": f"toy{i}", "condition": "toy"}
        if self.video is not None:
            item["video"] = self.video[i]
        return item


class ToyData(L.LightningDataModule):
    def __init__(self, n_train: int = 16, n_val: int = 8, num_mics: int = 1, batch_size: int = 8,
                 delay: float = 0.0, video: bool = False) -> None:
        super().__init__()
        self.train_set = ToyClips(n_train, num_mics, 0, delay, video)
        self.val_set = ToyClips(n_val, num_mics, 1, delay, video)
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size)


class TinyAudio(nn.Module):
    """An audio model with HTSAT's interface and no BatchNorm or dropout: band energies → linear."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 8)

    def forward(self, waveforms: torch.Tensor) -> AudioOutput:
        spec = torch.fft.rfft(waveforms[:, 0, :4096]).abs()[:, 1:1025]  # 1024 bins of ≈ 3.9 Hz
        feats = spec.reshape(len(waveforms), 64, 16).mean(-1).log1p()
        return AudioOutput(self.fc(feats), feats)


def quiet(**overrides) -> TrainConfig:
    return TrainConfig.quick(**{"progress": False, "num_workers": 0, "accelerator": "cpu", **overrides})


# ------------------------------------------------------------------------------------------ recipe


def test_paper_recipe_values():
    cfg = TrainConfig.paper()
    assert (cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.gradient_clip_val) == (32, 1e-3, 0.0, 1.0)
    assert (cfg.max_epochs, cfg.patience, cfg.top_k, cfg.size) == (500, 12, 8, "paper")
    assert (cfg.n_frames, cfg.frame_size) == (8, 224)
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(ValueError, match="no field"):
        TrainConfig.from_dict({**cfg.to_dict(), "learning_rate": 1})
    with pytest.raises(ValueError, match="same length"):
        TrainConfig(lr_rate=(0.1,))


def test_reference_lr_multipliers():
    expected = [0.02, 0.05] + [0.1] * 9 + [0.05] * 10 + [0.02] * 10 + [0.03] * 10  # epochs 0..40
    got = [reference_lr_multiplier(e) for e in range(41)]
    assert got == pytest.approx(expected)
    assert got[10] == 0.1 and got[11] == 0.05 and got[30] == 0.02 and got[31] == 0.03  # boundary epochs
    # the optimiser and per-epoch schedule the module configures
    module = EmotionModule(TinyAudio(), "audio_rev_sc", TrainConfig.paper())
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.Adam) and conf["lr_scheduler"]["interval"] == "epoch"
    assert opt.param_groups[0]["weight_decay"] == 0.0
    lrs = []
    for _ in range(35):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1e-3 * m for m in expected[:35]])


def _fake_checkpoint(path: Path, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {"model.fc.weight": torch.randn(3, 4, generator=g), "model.fc.bias": torch.randn(3, generator=g),
             "model.bn.num_batches_tracked": torch.tensor(10 * seed, dtype=torch.long)}
    torch.save({"epoch": seed, "state_dict": state}, path)
    return state


def test_weight_average_of_three_checkpoints_by_hand(tmp_path: Path):
    states = [_fake_checkpoint(tmp_path / f"c{i}.ckpt", i + 1) for i in range(3)]
    avg = average_checkpoints([tmp_path / f"c{i}.ckpt" for i in range(3)])
    assert set(avg) == {"fc.weight", "fc.bias", "bn.num_batches_tracked"}  # the module's "model." removed
    a, b, c = (s["model.fc.weight"] for s in states)
    by_hand = torch.empty(3, 4)
    for i in range(3):
        for j in range(4):
            by_hand[i, j] = (float(a[i, j]) + float(b[i, j]) + float(c[i, j])) / 3
    assert torch.allclose(avg["fc.weight"], by_hand, atol=1e-7)
    assert torch.allclose(avg["fc.bias"], (states[0]["model.fc.bias"] + states[1]["model.fc.bias"]
                                           + states[2]["model.fc.bias"]) / 3, atol=1e-7)
    assert avg["bn.num_batches_tracked"].dtype == torch.long and int(avg["bn.num_batches_tracked"]) == 20
    with pytest.raises(ValueError, match="other keys"):
        average_state_dicts([{"a": torch.zeros(1)}, {"b": torch.zeros(1)}])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        average_checkpoints([tmp_path / "nope.ckpt"])


# -------------------------------------------------------------------------------------- a whole run


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A 4-epoch run of the quick Rev-SC HTS-AT on toy data (top 3 averaged)."""
    out = tmp_path_factory.mktemp("run")
    result = train("audio_rev_sc", ToyData(n_train=8), quiet(max_epochs=4, patience=10, schedule="reference"), out)
    return out, result


@pytest.mark.slow
def test_run_directory_and_summary(toy_run):
    out, result = toy_run
    assert (out / "config.yaml").exists()
    import json

    record = json.loads((out / "config.json").read_text())
    assert record["seed"] == 0 and record["train"]["lr"] == 1e-3 and record["model"] == "audio_rev_sc"
    assert record["train"]["gradient_clip_val"] == 1.0
    assert "torch" in json.loads((out / "run.json").read_text())["versions"]  # what happened: beside the settings
    from merlib.config import load_config

    saved = load_config(out)  # the run's settings: one Config (an audio model reads no frames)
    assert saved.model == "audio_rev_sc" and saved.frames is None and saved.reverb is None
    assert saved.train == quiet(max_epochs=4, patience=10, schedule="reference")
    log = (out / "logs" / "run0" / "metrics.csv").read_text().splitlines()
    assert "train_loss_epoch" in log[0] and "val_acc" in log[0] and len(log) > 4
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in ckpts and len(ckpts) == 1 + 3  # last + the 3 best
    summary = read_summary(out)
    assert summary["epochs"] == result.epochs == 4 and len(summary["train_loss"]) == 4
    assert summary["lr"] == pytest.approx([2e-5, 5e-5, 1e-4, 1e-4])
    assert summary["n_checkpoints_averaged"] == 3 and not summary["stopped_early"]
    assert summary["best_val_acc"] == max(summary["val_acc"])
    kept = [a["val_acc"] for a in summary["averaged"]]
    assert kept == sorted(kept, reverse=True) and kept[0] == summary["best_val_acc"]
    assert result.val_acc_averaged is not None and 0.0 <= result.val_acc_averaged <= 1.0


@pytest.mark.slow
def test_final_weights_are_the_average_of_the_kept_checkpoints(toy_run):
    out, result = toy_run
    final = torch.load(out / "final.pt", weights_only=True)
    expected = average_checkpoints([out / a["path"] for a in result.summary["averaged"]])
    assert set(final) == set(expected)
    for key in final:
        assert torch.allclose(final[key].float(), expected[key].float(), atol=1e-6), key
    # final.pt loads both ways, and load_final rebuilds the model from config.json
    model = load_final(out)
    for key, value in model.state_dict().items():
        assert torch.equal(value, final[key]), key
    from merlib.models.mer import build_model

    fresh = build_model("audio_rev_sc", "quick")
    assert load_reference_checkpoint(fresh, out / "final.pt").missing == []
    assert torch.equal(fresh.norm.weight, final["norm.weight"])


@pytest.mark.slow
def test_refuses_to_overwrite_a_run_and_to_resume_nothing(toy_run, tmp_path: Path):
    out, _ = toy_run
    with pytest.raises(OutputError, match="resume=True"):
        train("audio_rev_sc", ToyData(), quiet(max_epochs=1), out)
    with pytest.raises(OutputError, match="cannot resume"):
        train("audio_rev_sc", ToyData(), quiet(max_epochs=1), tmp_path / "empty", resume=True)


def test_early_stopping_on_a_flat_validation_loss(tmp_path: Path):
    # lr = 0 and a model without BatchNorm: the validation loss never improves after epoch 0
    result = train("audio_rev_sc", ToyData(n_train=8, n_val=8), quiet(lr=0.0, max_epochs=20, patience=2, top_k=2),
                   tmp_path, model=TinyAudio())
    assert result.stopped_early and result.epochs == 3  # epoch 0 sets the best, then 2 epochs of patience
    assert len(set(result.summary["val_loss"])) == 1
    assert len(result.averaged) == 2


def test_learning_and_clipping_on_toy_tones(tmp_path: Path):
    seen = {}

    class Spy(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen["clip"] = trainer.gradient_clip_val
            seen["batch"] = trainer.train_dataloader.batch_size

    result = train("audio_rev_sc", ToyData(n_train=32), quiet(lr=0.2, max_epochs=5, top_k=1), tmp_path,
                   model=TinyAudio(), callbacks=[Spy()])
    assert seen == {"clip": 1.0, "batch": 8}
    losses = result.summary["train_loss"]
    assert losses[-1] < losses[0]


def test_resolve_launch_reads_torchrun_and_slurm(monkeypatch):
    for name in ("LOCAL_WORLD_SIZE", "WORLD_SIZE", "SLURM_NTASKS", "SLURM_NNODES", "SLURM_NTASKS_PER_NODE",
                 "SLURM_JOB_NAME"):
        monkeypatch.delenv(name, raising=False)
    cpu = resolve_launch(TrainConfig.quick(accelerator="cpu"))
    assert cpu["precision"] == "32-true" and cpu["strategy"] == "auto" and not cpu["sync_batchnorm"]
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setenv("WORLD_SIZE", "8")
    run = resolve_launch(TrainConfig.paper(accelerator="cpu"))
    assert (run["devices"], run["num_nodes"], run["strategy"]) == (4, 2, "ddp")
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("SLURM_NTASKS", "6")
    monkeypatch.setenv("SLURM_NNODES", "3")
    monkeypatch.setenv("SLURM_JOB_NAME", "mer")
    run = resolve_launch(TrainConfig.paper(accelerator="gpu"))
    assert (run["devices"], run["num_nodes"], run["strategy"], run["precision"]) == (2, 3, "ddp", "bf16-mixed")
    assert run["sync_batchnorm"]


def test_cli_parser_builds_the_config(tmp_path: Path):
    parser = ArgumentParser(prog="merlib")
    add_train_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "mer_sum_pe", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"),
                              "--quick", "--seed", "3", "--max-epochs", "2", "--devices", "2",
                              "--video-weights", "kinetics400"])
    cfg = config_from_args(args)
    assert (cfg.size, cfg.seed, cfg.max_epochs, cfg.devices, cfg.video_weights) == ("quick", 3, 2, 2, "kinetics400")
    assert args.model == "mer_sum_pe" and callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "mer_concat", "--data-root", "x", "--out", "y"])


# ----------------------------------------------------------------------------- processes: kill, DDP


_SCRIPT = """
import os, sys
sys.path.insert(0, {tests!r})
import lightning as L, torch
from test_training import TinyAudio, ToyData, quiet
from merlib.training import train

class Dump(L.Callback):
    def on_train_end(self, trainer, pl_module):
        torch.save(pl_module.model.state_dict(), os.path.join(sys.argv[1], f"rank{{trainer.global_rank}}.pt"))

{body}
"""


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "run_training.py"
    path.write_text(_SCRIPT.format(tests=str(TESTS), body=textwrap.dedent(body)))
    return path


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path):
    out = tmp_path / "run"
    script = _script(tmp_path, """
        train("audio_rev_sc", ToyData(delay=0.06), quiet(max_epochs=5, patience=50), sys.argv[1],
              resume=len(sys.argv) > 2, model=TinyAudio())
    """)
    proc = subprocess.Popen([PYTHON, str(script), str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no checkpoint after 120 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up, as a crash or a pre-empted job
    proc.wait()
    assert not (out / "summary.json").exists()
    saved_epoch = torch.load(last, weights_only=False)["epoch"]
    assert saved_epoch < 4
    done = subprocess.run([PYTHON, str(script), str(out), "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = read_summary(out)
    epochs = [e["epoch"] for e in summary["history"]]
    assert epochs == list(range(5))  # every epoch once: continued, not restarted
    assert summary["resumed_from_epoch"] == saved_epoch
    pids = [e["pid"] for e in summary["history"]]
    assert set(pids[: saved_epoch + 1]) == {proc.pid} and proc.pid not in pids[saved_epoch + 1 :]
    assert (out / "logs" / "run0").is_dir() and (out / "logs" / "run1").is_dir()


@pytest.mark.slow
def test_two_cpu_processes_with_gloo(tmp_path: Path):
    # the quick fusion model: DDP without find_unused_parameters only works if every trainable parameter
    # (all but the frozen audio head) gets a gradient
    out = tmp_path / "ddp"
    script = _script(tmp_path, """
        result = train("mer_rev_sc", ToyData(n_train=8, n_val=4, batch_size=2, video=True),
                       quiet(max_epochs=2, top_k=2, batch_size=4), sys.argv[1], callbacks=[Dump()])
        # one string, flushed at once: the two ranks share the pipe (print("world", n, …) wrote word by word)
        print(f"world {result.summary['world_size']} rank {os.environ['RANK']}", flush=True)
    """)
    torchrun = Path(PYTHON).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "world 2 rank 0" in done.stdout and "world 2 rank 1" in done.stdout
    assert "distributed_backend=gloo" in done.stdout + done.stderr
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    for key in r0:
        assert torch.equal(r0[key], r1[key]), f"ranks disagree on {key}"
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(last["model." + k], v) for k, v in r0.items() if not k.endswith("num_batches_tracked"))
    summary = read_summary(out)
    assert summary["world_size"] == 2 and summary["epochs"] == 2 and summary["n_checkpoints_averaged"] == 2


@pytest.mark.gpu
def test_one_gpu_bf16_run(tmp_path: Path):
    """Needs CUDA: trains the quick fusion model two epochs under bf16 autocast on one GPU."""
    result = train("mer_rev_sc", ToyData(n_train=8, n_val=4, video=True),
                   TrainConfig.quick(progress=False, num_workers=0, accelerator="gpu", devices=1, max_epochs=2), tmp_path)
    import json

    assert json.loads((tmp_path / "run.json").read_text())["launch"]["precision"] == "bf16-mixed"
    assert result.epochs == 2 and all(np.isfinite(result.summary["train_loss"]))


# ------------------------------------------------------------------------- the real (synthetic) data


@pytest.fixture(scope="module")
def small_corpora(quick_corpus, tmp_path_factory):
    """Two clips per actor of the quick corpus: reverberant build + quick frame cache."""
    from merlib.data.ravdess import scan
    from merlib.data.reverberant import ReverbConfig, build_reverberant_corpus, read_manifest
    from merlib.data.video import FrameSettings, build_frame_cache
    from merlib.datasets import CorpusPaths

    root = tmp_path_factory.mktemp("corpora")
    rev = build_reverberant_corpus(quick_corpus, root / "reverberant", ReverbConfig(seed=0), workers=2,
                                   progress=False, max_clips_per_actor=2)
    ids = {r["clip_id"] for r in read_manifest(rev)}
    clips = [c for c in scan(quick_corpus).complete() if c.clip_id in ids]
    frames = build_frame_cache(clips, root / "frames", TrainConfig.quick().frame_settings(), workers=2, progress=False)
    return CorpusPaths(rev, frames)


@pytest.mark.slow
def test_dataset_items(small_corpora):
    from merlib.datasets import MERDataModule

    dm = MERDataModule(small_corpora, "mer_sum_pe", batch_size=4)
    train_item = dm.dataset("train")[0]
    assert set(train_item) == {"waveform", "video", "label", "actor", "clip_id", "condition"}
    assert train_item["waveform"].shape == (3, 64000) and train_item["waveform"].dtype == torch.float32
    assert train_item["video"].shape == (3, 4, 51, 51)  # the training crop (180/224 of 64)
    assert train_item["condition"] == "reverberant"
    row = dm.select("train")[0]
    audio, sr = sf.read(row["path"], dtype="float32", always_2d=True)
    n = min(len(audio), 64000)
    assert sr == 16000 and torch.allclose(train_item["waveform"][:, :n], torch.from_numpy(audio[:n].T))
    assert torch.all(train_item["waveform"][:, n:] == 0)  # zero-padded at the end
    assert dm.test_conditions() == ["matched", "Lecture 1", "Lecture 2", "Lobby", "Meeting 1", "Meeting 2", "Office 1",
                                    "Office 2"]
    test_item = dm.dataset("test", "Lobby")[0]
    assert test_item["video"].shape == (3, 4, 64, 64) and test_item["condition"] == "Lobby"  # no crop at test

    sc = MERDataModule(small_corpora, "audio_clean_sc")
    item = sc.dataset("train")[0]
    assert "video" not in item and item["waveform"].shape == (1, 64000) and item["condition"] == "clean"
    room = sc.dataset("test", "Lobby")[0]  # a clean-trained SC model tested in a room takes microphone 0
    path = next(r["path"] for r in sc.rows if r["clip_id"] == room["clip_id"] and r["condition"] == "Lobby")
    mic0 = sf.read(path, dtype="float32", always_2d=True, frames=64000)[0][:, 0]
    assert torch.allclose(room["waveform"][0, : len(mic0)], torch.from_numpy(mic0))

    video = MERDataModule(small_corpora, "video")
    assert "waveform" not in video.dataset("val")[0]
    with pytest.raises(ValueError, match="has no 'test' rows in condition 'Attic'"):
        video.select("test", "Attic")
    from merlib.datasets import MERDataset

    with pytest.raises(ValueError, match="1 channel\\(s\\) but the model takes 3"):
        MERDataset(sc.select("train"), num_mics=3, modalities=("audio",))[0]


@pytest.mark.slow
def test_loaders_with_workers_and_a_short_real_run(small_corpora, tmp_path: Path):
    from merlib.datasets import MERDataModule

    dm = MERDataModule(small_corpora, "mer_sum_pe", batch_size=4, num_workers=2)
    batch = next(iter(dm.train_dataloader()))
    assert batch["waveform"].shape == (4, 3, 64000) and batch["video"].shape == (4, 3, 4, 51, 51)
    assert batch["label"].dtype == torch.long and len(batch["clip_id"]) == 4
    assert len(dm.test_dataloader()) == 8  # matched + the seven rooms
    result = train("mer_sum_pe", small_corpora, quiet(max_epochs=1, top_k=1, limit_train_batches=2), tmp_path)
    assert result.epochs == 1 and result.summary["n_checkpoints_averaged"] == 1
    import json

    data = json.loads((tmp_path / "run.json").read_text())["data"]
    assert data["n_train"] == 22 and data["n_val"] == 4 and data["frames"] == str(small_corpora.frames)
    from merlib.config import load_config
    from merlib.data.reverberant import ReverbConfig

    saved = load_config(tmp_path)  # the run's settings, the reverberant build's own among them (actor split too)
    built = json.loads((small_corpora.reverberant / "reverb_config.json").read_text())
    assert saved.model == "mer_sum_pe" and saved.frames == quiet().frame_settings()
    assert saved.reverb == ReverbConfig.from_dict(built["config"]) and saved.reverb.splits["test"]
    assert saved.synth is not None and saved.synth.size == "quick"  # the quick corpus is a `merlib synth` output
    with pytest.raises(ValueError, match="'n_frames': 4, 'size': 64.* but the run asks for .*'n_frames': 8, 'size': 224"):
        train("mer_sum_pe", small_corpora, quiet(n_frames=8, frame_size=224), tmp_path / "other")
