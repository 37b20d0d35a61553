"""Writes state_dict_p2.bin and state_dict_p4.bin: checkpoints laid out as torch.save lays them out, pickled by
CPython's own pickler (protocols 2 and 4), so the Java reader is held against a pickler it did not write.

torch is not needed: stand-in modules named torch, torch._utils and collections' OrderedDict give the pickler
the same globals, persistent ids and reduce tuples torch's do. Run: python3 make_fixture.py
"""
import collections
import pickle
import struct
import sys
import types
import zipfile

torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")
torch._utils = utils
sys.modules["torch"] = torch
sys.modules["torch._utils"] = utils


def _rebuild_tensor_v2(*args):
    raise AssertionError("never called")


def _rebuild_parameter(*args):
    raise AssertionError("never called")


_rebuild_tensor_v2.__module__ = "torch._utils"
_rebuild_parameter.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
utils._rebuild_parameter = _rebuild_parameter


class FloatStorage:
    pass


class BFloat16Storage:
    pass


class LongStorage:
    pass


for cls in (FloatStorage, BFloat16Storage, LongStorage):
    cls.__module__ = "torch"
    setattr(torch, cls.__name__, cls)


class Storage:
    def __init__(self, kind, key, data, fmt):
        self.kind, self.key, self.data, self.fmt = kind, key, data, fmt


class Tensor:
    def __init__(self, storage, offset, size, stride, parameter=False):
        self.storage, self.offset, self.size, self.stride, self.parameter = storage, offset, size, stride, parameter

    def __reduce__(self):
        plain = (_rebuild_tensor_v2, (self.storage, self.offset, tuple(self.size), tuple(self.stride), False,
                                      collections.OrderedDict()))
        if not self.parameter:
            return plain
        return (_rebuild_parameter, (Tensor(self.storage, self.offset, self.size, self.stride), True,
                                     collections.OrderedDict()))


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.kind, obj.key, "cpu", len(obj.data))
        return None


def bf16(x):
    return struct.unpack("<I", struct.pack("<f", x))[0] >> 16


# storage 0: 12 floats shared by two views (a tied weight and a slice of it); 1: bf16; 2: int64
shared = Storage(FloatStorage, "0", [i * 0.5 - 3 for i in range(12)], "<12f")
halves = Storage(BFloat16Storage, "1", [bf16(v) for v in (1.0, -2.5, 0.15625, 3.0, 1e-3, -7.0)], "<6H")
ids = Storage(LongStorage, "2", [7, -1, 1 << 40], "<3q")
state = collections.OrderedDict()
state["model.embed_tokens.weight"] = Tensor(shared, 0, [4, 3], [3, 1])
state["lm_head.weight"] = Tensor(shared, 0, [4, 3], [3, 1])
state["model.norm.weight"] = Tensor(shared, 9, [3], [1], parameter=True)
state["model.layers.0.mlp.up_proj.weight"] = Tensor(halves, 0, [2, 3], [3, 1])
state["model.position_ids"] = Tensor(ids, 0, [1, 3], [3, 1])
state._metadata = collections.OrderedDict([("", {"version": 1})])

for protocol in (2, 4):
    name = f"state_dict_p{protocol}"
    with zipfile.ZipFile(name + ".bin", "w", compression=zipfile.ZIP_STORED) as z:
        import io
        buffer = io.BytesIO()
        Pickler(buffer, protocol=protocol).dump(state)
        z.writestr(name + "/data.pkl", buffer.getvalue())
        z.writestr(name + "/byteorder", "little")
        for storage in (shared, halves, ids):
            z.writestr(name + "/data/" + storage.key, struct.pack(storage.fmt, *storage.data))
        z.writestr(name + "/version", "3\n")
