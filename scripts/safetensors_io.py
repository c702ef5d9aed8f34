"""Plain-Python safetensors reader/writer (no extra package), shared by the scripts.

Layout: 8-byte little-endian header length N, N bytes of JSON header, raw little-endian data.
The header maps names to {"dtype", "shape", "data_offsets": [begin, end]} relative to the
data section, plus an optional "__metadata__" of string -> string.
"""
import json
import struct

import torch

_TO_FILE = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
            torch.bfloat16: "BF16", torch.int64: "I64"}
_FROM_FILE = {v: k for k, v in _TO_FILE.items()}


def save(path, tensors, metadata=None):
    """Writes an ordered dict name -> torch.Tensor; raises on dtypes minidl cannot read."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        if t.dtype not in _TO_FILE:
            raise ValueError(f"{path}: tensor {name!r} has dtype {t.dtype}, not one of {list(_TO_FILE)}")
        t = t.detach().cpu().contiguous()
        # view as bytes without numpy: bfloat16 has no numpy dtype
        raw = t.view(torch.uint8).numpy().tobytes() if t.dim() > 0 else t.reshape(1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": _TO_FILE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def load(path):
    """Returns (dict name -> torch.Tensor, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, end = e["data_offsets"]
        buf = bytearray(data[base + b: base + end])
        t = torch.frombuffer(buf, dtype=_FROM_FILE[e["dtype"]]) if buf else torch.empty(0)
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta
