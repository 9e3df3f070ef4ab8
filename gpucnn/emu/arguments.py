"""Checking kernel arguments against parameter types, and staging arrays in guarded buffers.

CuPy checks nothing: a float64 array passed for ``float*`` or a Python int passed for ``int`` (CuPy sends
it as 64 bits) silently garbles the kernel's inputs. The emulator is where these bugs are caught.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import numpy as np

from . import native as N
from .errors import ArgumentTypeError

# Acceptable array dtypes for a T* parameter, by the pointee's type code.
_ARRAY_DTYPES: dict[int, tuple[str, ...]] = {
    N.TY_BOOL: ("bool",), N.TY_CHAR: ("int8", "uint8"), N.TY_I8: ("int8",), N.TY_U8: ("uint8",),
    N.TY_I16: ("int16",), N.TY_U16: ("uint16",), N.TY_I32: ("int32",), N.TY_U32: ("uint32",),
    N.TY_I64: ("int64",), N.TY_U64: ("uint64",), N.TY_F32: ("float32",), N.TY_F64: ("float64",),
    N.TY_FLOAT2: ("float32", "complex64"), N.TY_FLOAT4: ("float32",), N.TY_DOUBLE2: ("float64", "complex128"),
    N.TY_INT2: ("int32",), N.TY_INT4: ("int32",), N.TY_UINT2: ("uint32",), N.TY_UINT4: ("uint32",),
    N.TY_F16: ("float16",), N.TY_BF16: ("bfloat16",), N.TY_HALF2: ("float16",), N.TY_BF162: ("bfloat16",),
}
# The numpy scalar type a by-value parameter needs.
_SCALAR_DTYPES: dict[int, tuple[str, ...]] = {
    N.TY_BOOL: ("bool",), N.TY_CHAR: ("int8", "uint8"), N.TY_I8: ("int8",), N.TY_U8: ("uint8",),
    N.TY_I16: ("int16",), N.TY_U16: ("uint16",), N.TY_I32: ("int32",), N.TY_U32: ("uint32",),
    N.TY_I64: ("int64",), N.TY_U64: ("uint64",), N.TY_F32: ("float32",), N.TY_F64: ("float64",),
    N.TY_FLOAT2: ("complex64",), N.TY_DOUBLE2: ("complex128",), N.TY_F16: ("float16",), N.TY_BF16: ("bfloat16",),
}
# Where a dtype name's scalar type lives, for messages ("wrap it, e.g. ml_dtypes.bfloat16(1.0)").
_SCALAR_MODULE = {"bfloat16": "ml_dtypes"}


@dataclass
class ParamSpec:
    """A kernel parameter: its name and text from the source, its type as the compiler reports it."""

    index: int
    name: str
    text: str
    code: int
    is_ptr: bool
    is_const: bool
    size: int

    def describe(self) -> str:
        return f"args[{self.index}] ({self.text})"


@dataclass
class _Member:
    index: int
    spec: ParamSpec
    array: np.ndarray
    offset: int  # from the start of the group's union


@dataclass
class _Buffer:
    """One guarded copy of a host memory range; arguments that overlap share one."""

    start: int  # host address of the union
    nbytes: int
    members: list[_Member] = field(default_factory=list)
    data: int = 0
    map_base: int = 0
    map_len: int = 0
    write_back: bool = False


class Marshalled:
    """Arguments staged for one launch: the ``void**`` array and the guarded buffers behind it."""

    def __init__(self, nparams: int) -> None:
        # 16 bytes per slot, 16-byte aligned: room for any scalar up to double2 / a pointer.
        self.slots = np.zeros((max(nparams, 1), 2), np.uint64)
        base = self.slots.ctypes.data
        self.argv = np.array([base + 16 * i for i in range(max(nparams, 1))], np.uint64)
        self.buffers: list[_Buffer] = []

    def copy_back(self) -> None:
        for buf in self.buffers:
            if buf.write_back and buf.nbytes:
                ctypes.memmove(buf.start, buf.data, buf.nbytes)

    def free(self, lib: ctypes.CDLL) -> None:
        for buf in self.buffers:
            if buf.map_base:
                lib.emu_guarded_free(buf.map_base, buf.map_len)
                buf.map_base = 0
        self.buffers = []

    def describe_address(self, addr: int) -> tuple[str, int] | None:
        """Explain a faulting address relative to the argument arrays: (text, args index), or None."""
        for buf in self.buffers:
            if not buf.map_base <= addr < buf.map_base + buf.map_len:
                continue

            def distance(m: _Member) -> int:
                rel = addr - (buf.data + m.offset)
                return rel - m.array.nbytes + 1 if rel >= m.array.nbytes else (-rel if rel < 0 else 0)

            best = min(buf.members, key=distance)
            rel = addr - (buf.data + best.offset)
            a = best.array
            where = (f"byte offset {rel} (element {rel // a.itemsize}) of a {a.size}-element {a.dtype} array "
                     f"({a.nbytes} bytes)")
            if rel >= a.nbytes:
                where += ", past its end"
            elif rel < 0:
                where += ", before its start"
            others = [m for m in buf.members if m is not best]
            if others:
                where += " (shares memory with " + ", ".join(f"args[{m.index}]" for m in others) + ")"
            return f"{best.spec.describe()}: {where}", best.index
        return None


_DTYPE_SETS: dict[tuple[str, ...], frozenset] = {}


def _dtype_set(names: tuple[str, ...]) -> frozenset:
    """The numpy dtypes called `names` (hashable: a set lookup is much cheaper than dtype.name)."""
    found = _DTYPE_SETS.get(names)
    if found is None:
        if "bfloat16" in names:
            import ml_dtypes  # registers bfloat16 with NumPy; imported only for __nv_bfloat16 parameters

            del ml_dtypes
        found = _DTYPE_SETS[names] = frozenset(np.dtype(n) for n in names)
    return found


def _type_name(dtypes: tuple[str, ...]) -> str:
    return " or ".join(dtypes)


def _check(kernel: str, spec: ParamSpec, value: object) -> None:
    where = f"kernel '{kernel}': {spec.describe()}"
    if spec.is_ptr:
        if value is None:
            # CuPy before v14 passes None as an uninitialised (garbage) pointer, not NULL (cupy#9046):
            # a kernel that works here with None would fault on a GPU. Refuse it the same everywhere.
            raise ArgumentTypeError(f"{where} got None: CuPy < 14 passes None as a garbage pointer, not NULL; "
                                    f"pass an array (any, e.g. one element) and a flag saying it is unused")
        if spec.code == N.TY_POINTER:
            raise ArgumentTypeError(f"{where}: pointer-to-pointer parameters cannot be emulated")
        if not isinstance(value, np.ndarray):
            raise ArgumentTypeError(f"{where} needs a numpy array, got "
                                    f"{type(value).__name__}")
        allowed = _ARRAY_DTYPES.get(spec.code)
        if allowed is not None and value.dtype not in _dtype_set(allowed):
            raise ArgumentTypeError(f"{where} needs an array of dtype {_type_name(allowed)}, got dtype "
                                    f"{value.dtype.name}")
        if not value.flags.c_contiguous:
            raise ArgumentTypeError(f"{where}: the array is not C-contiguous; kernels see raw memory and ignore "
                                    "strides (use np.ascontiguousarray)")
        if not value.flags.aligned:
            raise ArgumentTypeError(f"{where}: the array is not aligned to its dtype")
        if not spec.is_const and not value.flags.writeable:
            raise ArgumentTypeError(f"{where}: the array is read-only but the parameter is not const "
                                    "(the kernel may write it)")
        return
    allowed = _SCALAR_DTYPES.get(spec.code)
    if allowed is None:
        if isinstance(value, np.void) and value.dtype.itemsize == spec.size:
            return
        raise ArgumentTypeError(f"{where}: by-value parameters of this type need a numpy structured scalar "
                                f"(np.void) of {spec.size} bytes, got {type(value).__name__}")
    if isinstance(value, np.generic) and value.dtype in _dtype_set(allowed):
        return
    want = " or ".join(f"{_SCALAR_MODULE.get(d, 'numpy')}.{d}" for d in allowed)
    if isinstance(value, (bool, int, float, complex)) and not isinstance(value, np.generic):
        raise ArgumentTypeError(
            f"{where} needs a {want} scalar, got Python {type(value).__name__} {value!r}: CuPy would pass it "
            f"as a 64-bit value and garble the argument; wrap it, e.g. "
            f"{_SCALAR_MODULE.get(allowed[0], 'np')}.{allowed[0]}({value!r})")
    if isinstance(value, np.ndarray):
        raise ArgumentTypeError(f"{where} needs a {want} scalar, got an ndarray (shape {value.shape})")
    got = f"numpy.{value.dtype.name}" if isinstance(value, np.generic) else type(value).__name__
    raise ArgumentTypeError(f"{where} needs a {want} scalar, got {got}")


def marshal(kernel: str, specs: list[ParamSpec], args: tuple, lib: ctypes.CDLL) -> Marshalled:
    """Check ``args`` against ``specs`` and stage them; the caller must ``free`` the result."""
    if len(args) != len(specs):
        sig = ", ".join(s.text for s in specs)
        raise ArgumentTypeError(f"kernel '{kernel}' takes {len(specs)} argument(s) ({sig}), got {len(args)}")
    for spec, value in zip(specs, args):
        _check(kernel, spec, value)
    out = Marshalled(len(specs))
    try:
        _stage_arrays(out, specs, args, lib)
        for spec, value in zip(specs, args):
            if not spec.is_ptr:
                raw = np.frombuffer(value.tobytes(), np.uint8)
                out.slots[spec.index].view(np.uint8)[:raw.size] = raw
    except BaseException:
        out.free(lib)
        raise
    return out


def _stage_arrays(out: Marshalled, specs: list[ParamSpec], args: tuple, lib: ctypes.CDLL) -> None:
    arrays = [(a.__array_interface__["data"][0], spec, a) for spec, a in zip(specs, args)
              if spec.is_ptr and a is not None]
    # Arguments whose memory overlaps (the same array twice, in-place ops, views) share one buffer, as they
    # share device memory on a GPU; otherwise the copy-backs would overwrite each other.
    arrays.sort(key=lambda item: item[0])
    groups: list[_Buffer] = []
    for start, spec, a in arrays:
        end = start + a.nbytes
        g = groups[-1] if groups else None
        if g is not None and a.nbytes and g.nbytes and start < g.start + g.nbytes:
            g.nbytes = max(g.nbytes, end - g.start)
        else:
            g = _Buffer(start=start, nbytes=a.nbytes)
            groups.append(g)
        g.members.append(_Member(spec.index, spec, a, start - g.start))
        g.write_back |= not spec.is_const
    for g in groups:
        base, length = ctypes.c_void_p(), ctypes.c_ulonglong()
        data = lib.emu_guarded_alloc(g.nbytes, ctypes.byref(base), ctypes.byref(length))
        if not data:
            raise MemoryError(f"cannot map a guarded buffer of {g.nbytes} bytes")
        g.data, g.map_base, g.map_len = data, base.value, length.value
        out.buffers.append(g)
        if g.nbytes:
            ctypes.memmove(g.data, g.start, g.nbytes)
        for m in g.members:
            out.slots[m.index, 0] = g.data + m.offset
