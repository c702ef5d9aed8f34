#!/usr/bin/python3
"""End-to-end parity of the real-user path on a full-size ResNet50 (opt-in; needs python3-torch).

    /usr/bin/python3 scripts/check_resnet50_classify.py --classify build/apps/classify [--keep DIR]

1. A seeded torchvision resnet50 with 10 classes (and non-trivial BN running statistics) is
   saved with torch.save, as a user's downloaded .pth would be.
2. scripts/convert_torchvision.py turns it into .safetensors.
3. Eight 64x64 images (EuroSAT ones when ../shared/data is present, else seeded noise) are
   written as PNG, so PyTorch (PIL) and minidl (stb_image) decode identical pixels.
4. PyTorch computes class probabilities with minidl's documented preprocessing
   ([0,1] scaling, ImageNet mean/std, no resize at 64x64); `classify --csv` computes ours.
5. Passes when every probability agrees within 1e-4 (absolute). Exit 77 = skipped.
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77

try:
    import numpy as np
    import torch
    import torchvision
    from PIL import Image
except ImportError as e:
    print(f"skipped: {e.name} is not installed (bash scripts/setup.sh --with-torch installs python3-torch)")
    sys.exit(SKIP)

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def make_images(folder, n=8):
    eurosat = os.path.join(HERE, "..", "..", "shared", "data", "EuroSAT_RGB")
    paths = []
    if os.path.isdir(eurosat):
        classes = sorted(d for d in os.listdir(eurosat) if os.path.isdir(os.path.join(eurosat, d)))
        for i in range(n):
            c = classes[i % len(classes)]
            img = Image.open(os.path.join(eurosat, c, f"{c}_{i + 1}.jpg")).convert("RGB")
            paths.append(os.path.join(folder, f"{i}_{c}.png"))
            img.save(paths[-1])
    else:
        rng = np.random.default_rng(0)
        for i in range(n):
            paths.append(os.path.join(folder, f"{i}_noise.png"))
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classify", required=True, help="path to build/apps/classify")
    ap.add_argument("--keep", help="write the files here instead of a temporary folder")
    args = ap.parse_args()
    if not os.access(args.classify, os.X_OK):
        sys.exit(f"check_resnet50_classify: {args.classify} is not an executable (build first)")
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = torchvision.models.resnet50(num_classes=10)
    with torch.no_grad():  # non-trivial running statistics, so eval mode is really exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    model.eval()

    work = args.keep or tempfile.mkdtemp(prefix="minidl_r50_")
    try:
        os.makedirs(os.path.join(work, "images"), exist_ok=True)
        pth, st, out_csv = (os.path.join(work, f) for f in ("resnet50.pth", "resnet50.safetensors", "probs.csv"))
        torch.save(model.state_dict(), pth)
        subprocess.run([sys.executable, os.path.join(HERE, "convert_torchvision.py"), pth, st, "--arch", "resnet50"],
                       check=True)
        paths = make_images(os.path.join(work, "images"))

        batch = np.stack([(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0 - MEAN) / STD
                          for p in paths]).transpose(0, 3, 1, 2)
        with torch.no_grad():
            logits = model(torch.from_numpy(np.ascontiguousarray(batch)))
        ref = torch.softmax(logits.double(), dim=1).numpy()

        subprocess.run([args.classify, "--model", st, "--arch", "resnet50", "--num-classes", "10", "--img-size", "64",
                        "--csv", out_csv, os.path.join(work, "images")], check=True, stdout=subprocess.DEVNULL)
        ours = {}
        with open(out_csv, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            for row in reader:
                ours[os.path.basename(row[0])] = np.array([float(v) for v in row[3:3 + 10]])
        if len(header) != 13 or len(ours) != len(paths):
            sys.exit(f"check_resnet50_classify: unexpected CSV layout ({len(header)} columns, {len(ours)} rows)")
        worst = max(float(np.abs(ours[os.path.basename(p)] - ref[i]).max()) for i, p in enumerate(paths))
        agree = sum(int(np.argmax(ours[os.path.basename(p)]) == np.argmax(ref[i])) for i, p in enumerate(paths))
        print(f"resnet50 (10 classes) on {len(paths)} 64x64 images: max |p_minidl - p_torch| = {worst:.3g}, "
              f"top-1 agrees on {agree}/{len(paths)}")
        sys.exit(0 if worst <= 1e-4 else 1)

    finally:  # the converted weights are ~180 MB: never leave them behind unless asked
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
