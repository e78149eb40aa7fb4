#!/usr/bin/env python3
"""set_tensor.py FILE NAME HEX16 — sets every element of the bf16 or f16
tensor NAME of the safetensors FILE, in place, to the 16-bit pattern HEX16
(e.g. 7f7f, the largest finite bf16): a checkpoint whose weights are
finite but whose activations overflow, for the tests of non-finite
results. Standard library only."""
import json
import struct
import sys


def main():
    path, name, bits = sys.argv[1], sys.argv[2], int(sys.argv[3], 16)
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        t = head[name]
        if t["dtype"] not in ("BF16", "F16"):
            sys.exit("set_tensor.py: %s is %s, not BF16 or F16" % (name, t["dtype"]))
        a, b = t["data_offsets"]
        f.seek(8 + n + a)
        f.write(struct.pack("<H", bits) * ((b - a) // 2))


if __name__ == "__main__":
    main()
