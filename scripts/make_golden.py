#!/usr/bin/python3
"""Writes the PyTorch parity goldens that tests/test_resnet_parity.cpp compares against.

    /usr/bin/python3 scripts/make_golden.py [--out tests/golden]

For resnet18 (BasicBlock; 32x32 inputs, batch 4) and resnet50 (Bottleneck; 64x64, batch 8,
so that train-mode batch norm in layer4 normalises over more than a handful of values), 10 classes:
weights from the shared deterministic fill (scripts/golden_fill.py = tests/golden_fill.h),
non-trivial BN running statistics, then with torchvision (the oracle):
  - eval-mode logits;
  - train-mode logits and cross-entropy loss (label smoothing 0.1);
  - gradients of a few parameters after backward();
  - those parameters after one SGD step (lr 0.1, momentum 0.9, weight decay 1e-4), and
    bn1's running statistics after the train-mode forward;
  - the same model in float64: eval/train logits, loss and gradients ("f64.*"), which pin
    the semantics down to ~1e-10, independent of float32 rounding.
Each model's goldens go to <out>/<arch>_golden.safetensors (a few hundred KB).
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_fill  # noqa: E402
import safetensors_io  # noqa: E402

CLASSES = 10
SHAPE = {"resnet18": (4, 32), "resnet50": (8, 64)}  # batch, image size
# float64 gradients: a few small ones for resnet18 (whose float32 gradients all meet 1e-4),
# every watched one for resnet50, whose early-layer float32 gradients are judged against them.
F64_WATCHED = {"resnet18": ["bn1.weight", "fc.bias", "layer4.0.downsample.1.bias"]}
LR, MOMENTUM, WD, SMOOTHING = 0.1, 0.9, 1e-4, 0.1
WATCHED = {
    "resnet18": ["conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight", "layer3.1.bn2.weight",
                 "layer4.0.downsample.1.bias", "fc.weight", "fc.bias"],
    "resnet50": ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight",
                 "layer3.5.bn3.weight", "layer4.2.bn3.bias", "fc.weight", "fc.bias"],
}


def build(arch):
    model = getattr(torchvision.models, arch)(num_classes=CLASSES)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            t.copy_(torch.from_numpy(golden_fill.fill(key, tuple(t.shape))))
    return model


def float64_goldens(arch, x, labels):
    """The same model in float64: outputs, gradients and the SGD step ("f64.*")."""
    model = build(arch).double()
    model.eval()
    out = {}
    with torch.no_grad():
        out["f64.logits_eval"] = model(x.double())
    model.train()
    logits = model(x.double())
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    loss = F.cross_entropy(logits, labels, label_smoothing=SMOOTHING)
    loss.backward()
    out["f64.logits_train"] = logits.detach()
    out["f64.loss_train"] = loss.detach().reshape(())
    params = dict(model.named_parameters())
    for name in F64_WATCHED.get(arch, WATCHED[arch]):
        out["f64.grad." + name] = params[name].grad.detach().clone()
    opt.step()
    for name in F64_WATCHED.get(arch, WATCHED[arch]):
        out["f64.sgd." + name] = params[name].detach().clone()
    return out


def golden(arch):
    torch.manual_seed(0)
    model = build(arch)
    batch, size = SHAPE[arch]
    x = torch.from_numpy(golden_fill.uniform01("input", batch * 3 * size * size).astype(np.float32) * 4.0 - 2.0)
    x = x.reshape(batch, 3, size, size)
    labels = torch.tensor([3, 0, 9, 5, 1, 7, 2, 8][:batch], dtype=torch.int64)
    out = {"input": x, "labels": labels}
    out.update(float64_goldens(arch, x, labels))

    model.eval()
    with torch.no_grad():
        out["logits_eval"] = model(x)

    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    logits = model(x)
    loss = F.cross_entropy(logits, labels, label_smoothing=SMOOTHING)
    loss.backward()
    out["logits_train"] = logits.detach()
    out["loss_train"] = loss.detach().reshape(())
    params = dict(model.named_parameters())
    # Where a float64 gradient and step exist they are the reference; the float32 copies
    # would only add size.
    f32_watched = [n for n in WATCHED[arch] if "f64.grad." + n not in out]
    for name in f32_watched:
        out["grad." + name] = params[name].grad.detach().clone()
    # PyTorch's own float32 deviation from float64 for the gradients kept only in float64:
    # the scale of float32 rounding in this network, recorded for the test's messages.
    torch32_dev = {}
    for name in WATCHED[arch]:
        if "f64.grad." + name in out:
            exact = out["f64.grad." + name]
            torch32_dev[name] = ((params[name].grad.double() - exact).abs().max() / exact.abs().max()).item()
    opt.step()
    for name in f32_watched:
        out["sgd." + name] = params[name].detach().clone()
    sd = model.state_dict()
    for name in ["bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"]:
        out["after." + name] = sd[name].clone()
    # A slice of one filled weight, so a fill mismatch is reported as such.
    out["fill_check.layer1.0.conv1.weight"] = torch.from_numpy(
        golden_fill.fill("layer1.0.conv1.weight", tuple(sd["layer1.0.conv1.weight"].shape))).flatten()[:64].clone()
    meta = {"arch": arch, "torch": torch.__version__, "torchvision": torchvision.__version__, "lr": str(LR),
            "momentum": str(MOMENTUM), "weight_decay": str(WD), "label_smoothing": str(SMOOTHING),
            "watched": ",".join(WATCHED[arch]), "f64_watched": ",".join(F64_WATCHED.get(arch, WATCHED[arch])),
            "torch_f32_grad_deviation": ",".join(f"{k}={v:.3g}" for k, v in torch32_dev.items())}
    return out, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "golden"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(2)
    for arch in WATCHED:
        tensors, meta = golden(arch)
        path = os.path.join(args.out, f"{arch}_golden.safetensors")
        safetensors_io.save(path, tensors, meta)
        print(f"{path}: {os.path.getsize(path) / 1024:.0f} KB, loss {tensors['loss_train'].item():.6f}, "
              f"eval logits |max| {tensors['logits_eval'].abs().max().item():.3f}")


if __name__ == "__main__":
    main()
