#!/usr/bin/env python
"""The GPU check: correctness on CUDA in bf16 and the figures of docs/performance.md, in one run.

    python scripts/gpu_check.py                      # on a GPU machine: about 6-8 minutes, writes docs/performance.md
    python scripts/gpu_check.py --cpu --out /tmp/p.md  # the same steps at tiny sizes on the CPU (tested in CI)

It runs from a source checkout (src/ is put on the path; no install needed, and the
machine's own torch is used: nothing here pins a torch version). Steps, each timed:

  1. correctness  models forward/backward in bf16 autocast (finite, close to float32), the
                  presets on the device against the CPU, the re-sampling (detector) gradients,
                  and resume (1 epoch + resume = 2 epochs straight) on the device
  2. data         a full-scale synthetic DFEW (every clip of the real lists, their frame counts)
  3. bench-data   rdfer's loader with 16 workers against the PIL reference loader
  4. bench-train  rdfer_r50, batch 128: model-only (tensors in memory) against end to end (the
                  loader), eager and torch.compile
  5. train        two epochs of the paper config (configs/dfew_rdfer_plus_r50.yaml, random weights:
                  nothing is downloaded) on fold 1: epoch time, projected 100-epoch time, peak memory
  6. predict      `rdfer predict --device cuda` on a video: frames/s (and bench-predict's stages)
  7. clip         the CLIP ViT-B/16 model (rdfer_clip_b16): training and inference clips/s, peak memory

Every figure goes into the report with the command that measured it, the device, the
versions and the date. A step that fails is reported as failed, and the others still run.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

# Sizes of the two modes. GPU: what the issue asks; CPU: the same code paths in about a minute.
SIZES = {
    "gpu": dict(models=("rdfer_r50", "rdfer_r18", "rdfer_tiny", "rdfer_clip_b16", "cnn_lstm", "r3d_18", "former_dfer"),
                model_size=None, full_scale_clips=None, render_size=128, render_workers=16, data_clips=512,
                data_workers=16, bench_model="rdfer_r50", bench_batch=128, bench_steps=10, bench_warmup=3,
                bench_workers=16, compile=True, train_config="dfew_rdfer_plus_r50", train_batch=128, train_workers=16,
                train_options=(), clip_batch=32, clip_options={}, clip_steps=5, resume_clips=60, predict_clips=4),
    "cpu": dict(models=("rdfer_tiny", "rdfer_clip_b16"), model_size=32, full_scale_clips=40, render_size=40,
                render_workers=2, data_clips=8, data_workers=2, bench_model="rdfer_tiny", bench_batch=4,
                bench_steps=2, bench_warmup=1, bench_workers=0, compile=False, train_config="dfew_rdfer_plus_r50",
                train_batch=8, train_workers=0,
                train_options=("model.name=rdfer_tiny", "model.options.input_size=32"),
                clip_batch=2, clip_options={"input_size": 32}, clip_steps=1, resume_clips=20, predict_clips=1),
}


class Report:
    """Figures and checks with how each was measured; written as docs/performance.md."""

    def __init__(self, device: str, mode: str):
        self.device, self.mode, self.rows, self.checks, self.notes = device, mode, [], [], []
        self.versions = versions(device)

    def figure(self, name: str, value: str, command: str) -> None:
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.rows.append((name, value, command, date))
        print(f"  {name}: {value}", flush=True)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, ok, detail))
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}", flush=True)

    def markdown(self, total_s: float) -> str:
        lines = ["# Performance", "",
                 f"Measured by `python scripts/gpu_check.py{' --cpu' if self.mode == 'cpu' else ''}` "
                 f"in {total_s / 60:.1f} min.", "",
                 f"- device: {self.device_name()}", f"- versions: {self.versions}", ""]
        if self.mode == "cpu":
            lines += ["CPU mode: tiny sizes that run the same code paths; these figures say nothing about speed.", ""]
        lines += ["## Correctness on the device", "", "| check | result | detail |", "|---|---|---|"]
        lines += [f"| {cell(name)} | {'ok' if ok else '**FAILED**'} | {cell(detail)} |" for name, ok, detail in self.checks]
        lines += ["", "## Figures", "", "| figure | value | command | device | date |", "|---|---|---|---|---|"]
        lines += [f"| {cell(name)} | {cell(value)} | `{cell(command)}` | {self.device_name()} | {date} |"
                  for name, value, command, date in self.rows]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def device_name(self) -> str:
        if self.device.startswith("cuda") and torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
        return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def cell(text: str) -> str:
    """Text for a markdown table cell (a | would end the cell)."""
    return str(text).replace("|", "\\|")


def versions(device: str) -> str:
    import torchvision

    parts = [f"python {platform.python_version()}", f"torch {torch.__version__}", f"torchvision {torchvision.__version__}"]
    if device.startswith("cuda") and torch.cuda.is_available():
        parts += [f"CUDA {torch.version.cuda}", f"cuDNN {torch.backends.cudnn.version()}"]
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        parts.append(f"rdfer {commit or 'unknown commit'}")
    except (OSError, subprocess.SubprocessError):
        pass
    return ", ".join(parts)


def rdfer(*args: str, timeout: int = 600) -> str:
    """Run `rdfer ARGS` from this checkout; its stdout (RuntimeError with stderr's tail on failure)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "rdfer", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"rdfer {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-600:]}")
    return done.stdout


def command_line(*args: str) -> str:
    return "rdfer " + " ".join(a if " " not in a else repr(a) for a in args)


# ----------------------------------------------------------------------------- 1. correctness


def check_correctness(report: Report, sizes: dict, device: torch.device, work: Path, small_root: Path) -> None:
    from rdfer.data.transforms import EvalPreset, TrainPreset
    from rdfer.engine.loop import autocast
    from rdfer.models import create_model

    amp = "bf16"
    for name in sizes["models"]:
        torch.manual_seed(0)
        options = {"input_size": sizes["model_size"]} if sizes["model_size"] else {}
        model = create_model(name, **options).to(device)
        config = model.config
        video = torch.rand(2, config.num_frames, 3, config.input_size, config.input_size, device=device)
        model.train()
        with autocast(device, amp):
            out = model(video)
        loss = out.logits.float().logsumexp(-1).sum() + out.clip_logits.float().sum()
        loss.backward()
        finite = all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        model.eval()
        with torch.no_grad():
            with autocast(device, amp):
                low = model(video).logits.float().softmax(-1)
            full = model(video).logits.float().softmax(-1)
        gap = (low - full).abs().max().item()
        report.check(f"{name} forward/backward in {amp if device.type == 'cuda' else 'float32 (CPU)'}",
                     finite and torch.isfinite(out.logits.float()).all().item() and gap < 0.05,
                     f"finite gradients: {finite}; max |p_bf16 - p_fp32| = {gap:.4f}")
        if name in ("rdfer_r50", "rdfer_tiny") and model.detector is not None:
            detector = [p.grad.abs().sum().item() for p in model.detector.parameters() if p.grad is not None]
            report.check(f"{name} re-sampling gradients", len(detector) > 0 and all(np.isfinite(detector))
                         and sum(detector) > 0,
                         f"{len(detector)} detector tensors with gradients, sum |grad| = {sum(detector):.3g}")
        del model
    frames = torch.randint(0, 256, (2, 16, 3, 128, 128), dtype=torch.uint8)
    on_device, on_cpu = EvalPreset(size=112)(frames.to(device)).cpu(), EvalPreset(size=112)(frames)
    gap = (on_device - on_cpu).abs().max().item()
    # Resize kernels differ between devices in rounding: one grey level (1/255) is the bar.
    report.check("EvalPreset on the device = on the CPU", gap <= 1.5 / 255, f"max |difference| = {gap:.2e}")
    generator = torch.Generator(device=device).manual_seed(0)
    augmented = TrainPreset(size=112)(frames.to(device), generator=generator)
    report.check("TrainPreset on the device", tuple(augmented.shape) == (2, 16, 3, 112, 112)
                 and 0 <= augmented.min().item() and augmented.max().item() <= 1,
                 f"shape {tuple(augmented.shape)}, range [{augmented.min().item():.3f}, {augmented.max().item():.3f}]")
    check_resume(report, device, work, small_root)


def check_resume(report: Report, device: torch.device, work: Path, root: Path) -> None:
    from rdfer.config import load_config, resolve_config_path
    from rdfer.engine import fit

    config = load_config(resolve_config_path("demo"), (
        f"data.root={root}", "data.num_workers=0", "optim.epochs=2", "optim.batch_size=8", "loss.warmup_epochs=1",
        "model.options.input_size=32", f"device={device}", "amp=bf16"))
    for run in ("straight", "again"):
        fit(config, work / run, progress=False)
    fit(config, work / "killed", stop_after_epoch=1, progress=False)
    fit(config, work / "killed", resume=True, progress=False)

    def weights(run):
        return torch.load(work / run / "checkpoints/last.pt", map_location="cpu", weights_only=True)["model"]

    def gap(a, b):
        return max((a[k].float() - b[k].float()).abs().max().item() for k in a if a[k].is_floating_point())

    straight = weights("straight")
    # GPU kernels need not be bitwise deterministic (atomics in backward): the same run twice sets the bar;
    # a resume that lost state (RNG, optimizer, scheduler) lands much further away than that.
    noise, resumed = gap(straight, weights("again")), gap(straight, weights("killed"))
    wars = [json.loads((work / run / "final.json").read_text())["last"]["war"] for run in ("straight", "killed")]
    report.check(f"resume in bf16 on {device.type}: 1 epoch + resume = 2 epochs", resumed <= max(10 * noise, 1e-6),
                 f"max |weight difference| {resumed:.2e} (the same run twice: {noise:.2e}); "
                 f"WAR {wars[0]:.2f} vs {wars[1]:.2f}")


# ----------------------------------------------------------------------------- 2.-7. figures


def render_data(report: Report, sizes: dict, out: Path) -> Path:
    from rdfer.synth import write_synthetic

    started = time.time()
    root = write_synthetic(out, layout="dfew", full_scale=True, clips=sizes["full_scale_clips"],
                           size=sizes["render_size"], progress=False, workers=sizes["render_workers"], noise=0.2)
    clips = sum(1 for _ in (root / "Clip" / "clip_224x224").iterdir()) if (root / "Clip" / "clip_224x224").is_dir() \
        else "?"
    report.figure("render the full-scale synthetic DFEW", f"{clips} clips in {time.time() - started:.0f} s",
                  f"rdfer synth --full-scale --size {sizes['render_size']} --noise 0.2 --out DIR"
                  + (f" --clips {sizes['full_scale_clips']}" if sizes["full_scale_clips"] else ""))
    return root


def bench_data(report: Report, sizes: dict, root: Path) -> None:
    args = ("bench", "data", "--dataset", "dfew", "--root", str(root), "--clips", str(sizes["data_clips"]),
            "--workers", str(sizes["data_workers"]), "--batch-size", "16")
    text = rdfer(*args)
    ours = re.search(r"rdfer \(.*?\)\s+([\d.]+)", text)
    reference = re.search(r"reference \(.*?\)\s+([\d.]+)", text)
    ratio = re.search(r"ratio: ([\d.]+)x", text)
    report.figure(f"bench data, {sizes['data_workers']} workers: rdfer / PIL reference (clips/s)",
                  f"{ours.group(1)} / {reference.group(1)} ({ratio.group(1)}x)", command_line(*args).replace(
                      str(root), "DFEW_SYNTH"))


def bench_train(report: Report, sizes: dict, root: Path, device: torch.device) -> None:
    for compiled in (False, True) if sizes["compile"] else (False,):
        args = ("bench", "train", "--model", sizes["bench_model"], "--batch-size", str(sizes["bench_batch"]),
                "--steps", str(sizes["bench_steps"]), "--warmup", str(sizes["bench_warmup"]), "--root", str(root),
                "--workers", str(sizes["bench_workers"]), "--device", str(device), "--amp", "bf16")
        if sizes["model_size"]:
            args += ("--set", f"model.options.input_size={sizes['model_size']}")
        if compiled:
            args += ("--compile",)
        text = rdfer(*args, timeout=900)
        model_only = float(re.search(r"\(a\) synthetic tensors:\s+([\d.]+)", text).group(1))
        end_to_end = float(re.search(r"\(b\) real loader:\s+([\d.]+)", text).group(1))
        report.figure(f"bench train {sizes['bench_model']} batch {sizes['bench_batch']} "
                      f"{'torch.compile' if compiled else 'eager'}: model-only / end-to-end (clips/s)",
                      f"{model_only:.1f} / {end_to_end:.1f} ({end_to_end / model_only:.2f})",
                      command_line(*args).replace(str(root), "DFEW_SYNTH"))
    if not sizes["compile"]:
        report.notes.append("torch.compile is not timed in CPU mode (minutes of C++ compilation for no figure).")


def train_two_epochs(report: Report, sizes: dict, root: Path, device: torch.device, work: Path) -> Path:
    from rdfer.config import load_config, resolve_config_path
    from rdfer.engine import fit

    overrides = (f"data.root={root}", "model.options.pretrained=null", "optim.epochs=2",
                 f"optim.batch_size={sizes['train_batch']}", f"data.num_workers={sizes['train_workers']}",
                 f"device={device}", *sizes["train_options"])
    config = load_config(resolve_config_path(sizes["train_config"]), overrides)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.time()
    fit(config, work / "paper", progress=False)
    total = time.time() - started
    epochs = [json.loads(line) for line in (work / "paper" / "metrics.jsonl").read_text().splitlines()]
    second = epochs[-1]["time_s"]
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    command = (f"rdfer train --config {sizes['train_config']} --out RUN "
               + " ".join(f"--set {o}" for o in overrides).replace(str(root), "DFEW_SYNTH").replace(
                   "optim.epochs=2", "optim.epochs=2"))
    samples = epochs[-1]["samples"]
    report.figure("paper config, fold 1: seconds per epoch (2nd epoch, train + test)",
                  f"{second:.1f} s ({samples} training clips; {total:.0f} s for both epochs with start-up)", command)
    report.figure("paper config: projected 100 epochs", f"{100 * second / 3600:.2f} h", command)
    report.figure("paper config: peak GPU memory (allocated)",
                  f"{peak:.1f} GiB" if peak == peak else "n/a on CPU", command)
    return work / "paper" / "checkpoints" / "last.pt"


def predict_speed(report: Report, sizes: dict, root: Path, checkpoint: Path, device: torch.device,
                  work: Path) -> None:
    import cv2

    folders = sorted(p for p in (root / "Clip" / "clip_224x224").iterdir() if p.is_dir())[:sizes["predict_clips"]]
    video = work / "faces.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (256, 256))
    frames = 0
    for folder in folders:
        for image in sorted(folder.glob("*.jpg")):
            writer.write(cv2.resize(cv2.imread(str(image)), (256, 256)))
            frames += 1
    writer.release()
    args = ("predict", str(video), "--checkpoint", str(checkpoint), "--device", str(device), "--out",
            str(work / "predicted"), "--no-progress")
    started = time.time()
    rdfer(*args)
    seconds = time.time() - started
    report.figure(f"predict --device {device.type}: frames/s of the whole command (start-up included)",
                  f"{frames / seconds:.1f} ({frames} frames of 256 px in {seconds:.1f} s)",
                  command_line(*args).replace(str(work), "WORK"))
    args = ("bench", "predict", str(video), "--checkpoint", str(checkpoint), "--device", str(device), "--no-startup")
    text = rdfer(*args)
    stages = dict(re.findall(r"^\s+(decode|faces|model|end_to_end)\s+([\d.]+)", text, re.M))
    report.figure(f"bench predict --device {device.type}: frames/s by stage",
                  ", ".join(f"{k} {v}" for k, v in stages.items()) or text.strip().splitlines()[-1],
                  command_line(*args).replace(str(work), "WORK"))


def clip_speed(report: Report, sizes: dict, device: torch.device, batch: int = 0) -> None:
    """Clips/s of rdfer_clip_b16; on running out of GPU memory, again at half the batch (noted)."""
    batch = batch or sizes["clip_batch"]
    try:
        _clip_speed(report, sizes, device, batch)
        return
    except torch.cuda.OutOfMemoryError:
        if batch == 1:
            raise
    # Outside the except block, so that the failed attempt's tensors (held by the traceback) are freed.
    torch.cuda.empty_cache()
    report.notes.append(f"rdfer_clip_b16 ran out of GPU memory at batch {batch}: measured at {batch // 2}")
    clip_speed(report, sizes, device, batch // 2)


def _clip_speed(report: Report, sizes: dict, device: torch.device, batch: int) -> None:
    from rdfer.engine.loop import autocast
    from rdfer.models import create_model

    torch.manual_seed(0)
    model = create_model("rdfer_clip_b16", **sizes["clip_options"]).to(device)
    config = model.config
    video = torch.rand(batch, config.num_frames, 3, config.input_size, config.input_size, device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def train_step():
        with autocast(device, "bf16"):
            out = model(video)
        loss = out.logits.float().logsumexp(-1).mean() + out.clip_logits.float().logsumexp(-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    train_step()
    sync()
    started = time.perf_counter()
    for _ in range(sizes["clip_steps"]):
        train_step()
    sync()
    train_rate = batch * sizes["clip_steps"] / (time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    model.eval()
    with torch.no_grad(), autocast(device, "bf16"):
        model(video)
        sync()
        started = time.perf_counter()
        for _ in range(sizes["clip_steps"]):
            model(video)
        sync()
    infer_rate = batch * sizes["clip_steps"] / (time.perf_counter() - started)
    precision = "bf16" if device.type == "cuda" else "float32"  # autocast is off on the CPU (engine/loop.py)
    where = (f"rdfer_clip_b16 ({config.num_frames} frames of {config.input_size} px, batch {batch}, {precision}, "
             "encoder fine-tuned)")
    report.figure(f"CLIP ViT-B/16 training clips/s: {where}",
                  f"{train_rate:.3g} clips/s; peak memory " + (f"{peak:.1f} GiB" if peak == peak else "n/a on CPU"),
                  "python scripts/gpu_check.py --only clip")
    report.figure(f"CLIP ViT-B/16 inference clips/s: {where}", f"{infer_rate:.3g} clips/s",
                  "python scripts/gpu_check.py --only clip")


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="tiny sizes on the CPU (checks the script itself)")
    parser.add_argument("--out", help="report file (default: docs/performance.md on a GPU; required with --cpu)")
    parser.add_argument("--work", help="folder for data and runs (default: a temporary one, removed afterwards)")
    parser.add_argument("--only", help="comma-separated steps to run: correctness,data,bench-data,bench-train,"
                                       "train,predict,clip (default: all; train feeds predict)")
    args = parser.parse_args(argv)
    mode = "cpu" if args.cpu else "gpu"
    if mode == "gpu" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible to torch; run with --cpu --out FILE for the CPU mode",
              file=sys.stderr)
        return 2
    if mode == "cpu" and not args.out:
        print("gpu_check: --cpu needs --out FILE (docs/performance.md holds GPU figures only)", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else REPO / "docs" / "performance.md"
    steps = set(args.only.split(",")) if args.only else {"correctness", "data", "bench-data", "bench-train",
                                                         "train", "predict", "clip"}
    sizes = SIZES[mode]
    device = torch.device("cuda" if mode == "gpu" else "cpu")
    if mode == "cpu":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    report = Report(str(device), mode)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rdfer-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    print(f"gpu_check ({mode} mode) on {report.device_name()}; {report.versions}; work folder {work}", flush=True)

    def step(name: str, fn, *fn_args):
        if name not in steps:
            return None
        print(f"[{time.time() - started:5.0f} s] {name}", flush=True)
        try:
            return fn(*fn_args)
        except Exception as error:  # report it and go on: one broken step must not hide the other figures
            traceback.print_exc()
            report.check(f"step {name}", False, f"{type(error).__name__}: {str(error).splitlines()[0][:300]}")
            return None

    try:
        from rdfer.synth import write_synthetic

        small = None
        if "correctness" in steps or "data" not in steps:  # the resume check's data; the others' without `data`
            small = write_synthetic(work / "small", layout="dfew", clips=sizes["resume_clips"], noise=0.2, seed=3,
                                    size=40, progress=False)
        step("correctness", check_correctness, report, sizes, device, work / "correctness", small)
        root = step("data", render_data, report, sizes, work / "dfew") or small
        step("bench-data", bench_data, report, sizes, root)
        step("bench-train", bench_train, report, sizes, root, device)
        checkpoint = step("train", train_two_epochs, report, sizes, root, device, work / "train")
        if checkpoint is not None:
            step("predict", predict_speed, report, sizes, root, checkpoint, device, work)
        step("clip", clip_speed, report, sizes, device)
    finally:
        total = time.time() - started
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report.markdown(total))
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    failed = [name for name, ok, _ in report.checks if not ok]
    print(f"gpu_check: {len(report.rows)} figures, {len(report.checks) - len(failed)}/{len(report.checks)} checks ok "
          f"in {total:.0f} s; wrote {out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
