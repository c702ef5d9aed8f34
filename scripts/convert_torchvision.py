#!/usr/bin/python3
"""Converts a torchvision or timm ResNet checkpoint (.pth state dict) to .safetensors for minidl.

    python3 scripts/convert_torchvision.py resnet50-11ad3fa6.pth resnet50.safetensors [--arch resnet50]

Accepts a bare state dict, or a dict holding one under 'state_dict' / 'model'; strips the
'module.' prefix DataParallel adds. Keys are kept as they are: minidl's ResNet uses
torchvision's names (conv1.weight, bn1.running_mean, layer1.0.conv1.weight, fc.bias, ...),
which timm's ResNets share. Needs only Debian's python3-torch.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def extract_state_dict(obj, path):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise SystemExit(f"convert_torchvision: {path}: no state dict found (expected a dict of tensors, "
                     f"or one under 'state_dict' or 'model')")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help=".pth file written by torch.save (torchvision or timm weights)")
    ap.add_argument("output", help=".safetensors file to write")
    ap.add_argument("--arch", default="", help="architecture recorded in the metadata (e.g. resnet50)")
    args = ap.parse_args()
    if not os.path.isfile(args.input):
        raise SystemExit(f"convert_torchvision: {args.input}: no such file")
    try:
        obj = torch.load(args.input, map_location="cpu")
    except Exception as e:  # a truncated or foreign file
        raise SystemExit(f"convert_torchvision: {args.input}: cannot be read by torch.load: {e}")
    sd = extract_state_dict(obj, args.input)
    tensors = {}
    for k, v in sd.items():
        name = k[len("module."):] if k.startswith("module.") else k
        tensors[name] = v
    meta = {"format": "pt", "source": os.path.basename(args.input)}
    if args.arch:
        meta["arch"] = args.arch
    fc = tensors.get("fc.weight")
    if fc is not None:
        meta["num_classes"] = str(fc.shape[0])
    tmp = args.output + ".tmp"
    safetensors_io.save(tmp, tensors, meta)
    os.replace(tmp, args.output)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    print(f"wrote {args.output}: {len(tensors)} tensors, {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
