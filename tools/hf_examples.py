"""What tools/fisher and tools/regmean share: the device to run on and the JSON-lines examples they read."""
import json


def default_device():
    """cuda where PyTorch sees a GPU, else cpu (and cpu where PyTorch is missing, for --help)."""
    try:
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def examples(path, limit):
    """The first `limit` examples of a JSON-lines file, one object per non-empty line."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= limit:
                return
            if line.strip():
                yield json.loads(line)
