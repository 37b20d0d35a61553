"""Writes the reference files the storage tests compare our writer against, with the reference
implementation itself (pip install safetensors numpy). Run from this directory; commit the outputs."""
import numpy as np
from safetensors.numpy import save_file

rng = np.random.default_rng(7)
tensors = {
    "model.embed_tokens.weight": rng.standard_normal((5, 4)).astype(np.float32),
    "model.layers.0.mlp.up_proj.weight": rng.standard_normal((3, 2)).astype(np.float16),
    "model.layers.0.self_attn.q_proj.bias": rng.standard_normal((4,)).astype(np.float64),
    "lm_head.weight": rng.standard_normal((2, 2)).astype(np.float32),
    "position_ids": np.arange(6, dtype=np.int64).reshape(1, 6),
    "counts.u64": np.array([1, 2**63 + 5], dtype=np.uint64),
    "counts.i32": np.array([-7, 9, 11], dtype=np.int32),
    "counts.u32": np.array([7], dtype=np.uint32),
    "counts.i16": np.array([-3, 4], dtype=np.int16),
    "counts.u16": np.array([65535], dtype=np.uint16),
    "counts.i8": np.array([-128, 127, 0], dtype=np.int8),
    "counts.u8": np.array([255, 1], dtype=np.uint8),
    "mask": np.array([True, False, True]),
    "scalar": np.array(2.5, dtype=np.float32),
    "empty": np.zeros((0, 3), dtype=np.float32),
    "name with \"quotes\", \\ and \t tab": np.ones((1,), dtype=np.float32),
}
save_file(tensors, "mixed-dtypes.safetensors", metadata={"format": "pt"})
save_file({"only": np.ones((2, 3), dtype=np.float32)}, "no-metadata.safetensors")
