#!/usr/bin/python3
"""cut_layers.py — a model's first N layers as a model of its own.

  cut_layers.py SRC N OUT

SRC is a Hugging Face model directory (config.json, model.safetensors,
tokenizer files); OUT gets the same files with layers N and later left out
of the weights and num_hidden_layers set to N. The embedding, final norm,
head and tokenizer are SRC's, byte for byte: a self-speculative draft
model, the same model's early layers guessing its next tokens
(tests/draft.bats). Written from the safetensors format description (an
8-byte little-endian header length, a JSON header of dtype, shape and
data_offsets relative to the data that follows it).
"""
import json
import os
import re
import shutil
import struct
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: cut_layers.py SRC N OUT")
    src, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    if not 1 <= n <= config["num_hidden_layers"]:
        sys.exit(f"cut_layers.py: N must be 1..{config['num_hidden_layers']}")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(src, "model.safetensors"), "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
        data = f.read()
    meta = header.pop("__metadata__", None)
    layer = re.compile(r"\.layers\.(\d+)\.")
    kept = {}
    chunks = []
    at = 0
    for name in sorted(header, key=lambda k: header[k]["data_offsets"][0]):
        m = layer.search(name)
        if m and int(m.group(1)) >= n:
            continue
        t = header[name]
        lo, hi = t["data_offsets"]
        kept[name] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [at, at + hi - lo]}
        chunks.append(data[lo:hi])
        at += hi - lo
    if meta is not None:
        kept["__metadata__"] = meta
    head = json.dumps(kept, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for c in chunks:
            f.write(c)
    config["num_hidden_layers"] = n
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in os.listdir(src):
        if name not in ("config.json", "model.safetensors", "README.md") and os.path.isfile(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(out, name))


if __name__ == "__main__":
    main()
