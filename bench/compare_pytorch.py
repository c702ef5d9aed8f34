#!/usr/bin/python3
"""minidl vs PyTorch on the same ResNet configurations, measured in one run.

    /usr/bin/python3 bench/compare_pytorch.py [--threads 2] [--rounds 3] [--quick]
                     [--archs resnet50,resnet18] [--modes train,infer] [--img-size 64]
                     [--batch 32] [--infer-batch 64] [--warmup 2] [--steps 8]
                     [--bench-bin build/bench/bench_train] [--json FILE]

Needs Debian's python3-torch and python3-torchvision (scripts/setup.sh --with-torch); they
belong to /usr/bin/python3, hence the shebang (a pyenv `python3` on PATH will not see them).
Needs build/bench/bench_train (cmake --build build --target bench_train).

For every configuration (arch x mode) the script runs ROUNDS rounds, each round one minidl
process (bench_train --mode M --json ...) then one PyTorch process (this script in worker
mode), so slow drifts of a shared machine land on both alike and each peak RSS belongs to one
framework and one mode alone. Both do the same work on a fixed random batch: training is
forward, cross-entropy with label smoothing 0.1, zero_grad, backward and an AdamW step (lr
1e-3, weight decay 0.05 on conv/linear kernels only; train_resnet's defaults), model in train
mode; inference is eval mode without autograd. Both use THREADS threads (torch.set_num_threads
and OMP_NUM_THREADS). Each process reports the median img/s over its timed steps; the table
shows the median over rounds for each framework, the median over rounds of the per-round
ratio minidl/PyTorch (>1: minidl faster), and the largest peak RSS (ru_maxrss) of each.
"""
import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torch_worker(a):
    """One PyTorch process: one mode of one arch; writes its result as JSON to a.out."""
    import torch
    import torchvision

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, a.arch)(num_classes=a.classes)
    batch = a.batch if a.mode == "train" else a.infer_batch
    x = torch.randn(batch, 3, a.img_size, a.img_size)
    y = torch.randint(0, a.classes, (batch,))
    times = []
    if a.mode == "train":
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
        model.train()
        for s in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            loss = loss_fn(model(x), y)
            loss.item()  # minidl's trainer reads the loss every step too
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if s >= a.warmup:
                times.append(time.perf_counter() - t0)
    else:
        model.eval()
        with torch.no_grad():
            for s in range(a.warmup + a.steps):
                t0 = time.perf_counter()
                model(x)
                if s >= a.warmup:
                    times.append(time.perf_counter() - t0)
    result = {
        "framework": "pytorch " + torch.__version__,
        a.mode: {"batch": batch, "img_per_s": batch / statistics.median(times),
                 "img_per_s_steps": [batch / t for t in times]},
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    with open(a.out, "w") as f:
        json.dump(result, f)


def run_json(cmd, env, what):
    """Runs cmd (which writes JSON to its last argument's file); returns the parsed JSON."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        path = tmp.name
    try:
        proc = subprocess.run(cmd + [path], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            sys.exit(f"compare_pytorch: the {what} run failed (exit {proc.returncode}):\n  {' '.join(cmd)}\n"
                     + proc.stdout[-3000:])
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="compute threads for both frameworks (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians over them (default 3)")
    p.add_argument("--quick", action="store_true", help="1 round, 1 warm-up step, 3 timed steps (a smoke run)")
    p.add_argument("--archs", default="resnet50,resnet18", help="comma-separated (default resnet50,resnet18)")
    p.add_argument("--modes", default="train,infer", help="train and/or infer (default both)")
    p.add_argument("--img-size", type=int, default=64, help="square input size (default 64)")
    p.add_argument("--batch", type=int, default=32, help="training batch (default 32)")
    p.add_argument("--infer-batch", type=int, default=64, help="inference batch (default 64)")
    p.add_argument("--classes", type=int, default=10, help="classifier outputs (default 10, EuroSAT)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per process (default 2)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per process (default 8)")
    p.add_argument("--bench-bin", default=os.path.join(REPO, "build", "bench", "bench_train"),
                   help="minidl's bench_train binary (default build/bench/bench_train)")
    p.add_argument("--json", help="also write every round and the summary here")
    # Worker mode (used by the script itself): one PyTorch process.
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--arch", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("out", nargs="?", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return torch_worker(a)
    if a.quick:
        a.rounds, a.warmup, a.steps = 1, 1, 3
    if a.threads < 1 or a.rounds < 1 or a.steps < 1 or a.warmup < 0:
        sys.exit("compare_pytorch: --threads, --rounds and --steps must be >= 1, --warmup >= 0")
    modes = [m for m in a.modes.split(",") if m]
    archs = [x for x in a.archs.split(",") if x]
    if any(m not in ("train", "infer") for m in modes):
        sys.exit("compare_pytorch: --modes takes train and/or infer")

    for mod in ("torch", "torchvision"):
        if importlib.util.find_spec(mod) is None:
            sys.exit(f"compare_pytorch: {mod} is not importable from {sys.executable}. Install Debian's "
                     "python3-torch and python3-torchvision (scripts/setup.sh --with-torch) and run this "
                     "script with /usr/bin/python3.")
    if not os.access(a.bench_bin, os.X_OK):
        sys.exit(f"compare_pytorch: {a.bench_bin} is not built. Build it first:\n"
                 "  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target bench_train\n"
                 "or point --bench-bin at a built bench_train.")

    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    common = ["--img-size", str(a.img_size), "--batch", str(a.batch), "--infer-batch", str(a.infer_batch),
              "--threads", str(a.threads), "--warmup", str(a.warmup), "--steps", str(a.steps),
              "--classes", str(a.classes)]
    print(f"compare_pytorch: {a.threads} thread(s), {a.rounds} round(s) of {a.warmup} warm-up + {a.steps} timed "
          f"steps, {a.img_size}x{a.img_size}, train batch {a.batch}, inference batch {a.infer_batch}", flush=True)
    results = []
    for arch in archs:
        for mode in modes:
            rounds = []
            for r in range(a.rounds):
                ours = run_json([a.bench_bin, "--arch", arch, "--mode", mode] + common + ["--json"], env,
                                f"minidl {arch} {mode}")
                theirs = run_json([sys.executable, os.path.abspath(__file__), "--worker", "--arch", arch,
                                   "--mode", mode] + common, env, f"PyTorch {arch} {mode}")
                rounds.append({"minidl": ours, "pytorch": theirs})
                print(f"  {arch} {mode} round {r + 1}: minidl {ours[mode]['img_per_s']:.1f} img/s, "
                      f"PyTorch {theirs[mode]['img_per_s']:.1f} img/s", flush=True)
            m = [x["minidl"][mode]["img_per_s"] for x in rounds]
            t = [x["pytorch"][mode]["img_per_s"] for x in rounds]
            results.append({
                "arch": arch, "mode": mode,
                "batch": a.batch if mode == "train" else a.infer_batch,
                "minidl_img_per_s": statistics.median(m), "pytorch_img_per_s": statistics.median(t),
                "ratio": statistics.median([x / y for x, y in zip(m, t)]),
                "minidl_peak_rss_mib": max(x["minidl"]["peak_rss_mib"] for x in rounds),
                "pytorch_peak_rss_mib": max(x["pytorch"]["peak_rss_mib"] for x in rounds),
                "minidl_gflops": statistics.median(x["minidl"][mode]["gflops"] for x in rounds),
                "pytorch_version": rounds[0]["pytorch"]["framework"],
                "rounds": rounds,
            })

    print(f"\n{'config':<28} {'minidl img/s':>13} {'PyTorch img/s':>14} {'minidl/PyTorch':>15} "
          f"{'RSS minidl':>11} {'RSS PyTorch':>12}")
    for x in results:
        name = f"{x['arch']} {x['mode']} {a.img_size}px b{x['batch']}"
        print(f"{name:<28} {x['minidl_img_per_s']:>13.1f} {x['pytorch_img_per_s']:>14.1f} {x['ratio']:>14.2f}x "
              f"{x['minidl_peak_rss_mib']:>8.0f} MiB {x['pytorch_peak_rss_mib']:>8.0f} MiB")
    print(f"(medians over {a.rounds} round(s); ratio = median of per-round ratios; RSS = largest peak RSS of a "
          f"process; {results[0]['pytorch_version'] if results else ''}, {a.threads} thread(s))")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": a.threads, "rounds": a.rounds, "img_size": a.img_size, "results": results}, f,
                      indent=2)


if __name__ == "__main__":
    main()
