"""ctypes mirrors of the structs in emu_abi.h, and loading of the runtime and module libraries."""
from __future__ import annotations

import ctypes

ABI_VERSION = 2  # GPUCNN_EMU_ABI in emu_abi.h

# EmuError.kind
OK, ERR_TRAP, ERR_ASSERT, ERR_FAULT, ERR_DEADLOCK, ERR_WARP, ERR_INTERNAL, ERR_ADDRESS = range(8)
# EmuError.region
REGION_UNKNOWN, REGION_DYN_SMEM, REGION_STACK = range(3)
# EmuLaunch.order
ORDER_CODES = {"forward": 0, "reverse": 1, "shuffled": 2}

# EMU_TY_* codes
(TY_OTHER, TY_VOID, TY_BOOL, TY_CHAR, TY_I8, TY_U8, TY_I16, TY_U16, TY_I32, TY_U32, TY_I64, TY_U64, TY_F32,
 TY_F64, TY_FLOAT2, TY_FLOAT4, TY_DOUBLE2, TY_INT2, TY_INT4, TY_UINT2, TY_UINT4, TY_POINTER, TY_F16, TY_BF16,
 TY_HALF2, TY_BF162) = range(26)


class EmuParam(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("is_ptr", ctypes.c_int), ("is_const", ctypes.c_int),
                ("size", ctypes.c_int)]


class EmuKernelInfo(ctypes.Structure):
    _fields_ = [("tramp", ctypes.c_void_p), ("nparams", ctypes.c_int), ("params", ctypes.POINTER(EmuParam)),
                ("smem_begin", ctypes.c_void_p), ("smem_end", ctypes.c_void_p)]


class EmuModuleInfo(ctypes.Structure):
    _fields_ = [("abi", ctypes.c_int), ("common_smem_begin", ctypes.c_void_p),
                ("common_smem_end", ctypes.c_void_p)]


class EmuLaunch(ctypes.Structure):
    _fields_ = [("tramp", ctypes.c_void_p), ("args", ctypes.c_void_p), ("grid", ctypes.c_uint * 3),
                ("block", ctypes.c_uint * 3), ("dyn_smem", ctypes.c_ulonglong), ("smem", ctypes.c_void_p * 4),
                ("order", ctypes.c_int), ("seed", ctypes.c_ulonglong), ("stack_bytes", ctypes.c_ulonglong)]


class EmuErrorInfo(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("block", ctypes.c_uint * 3), ("thread", ctypes.c_uint * 3),
                ("signo", ctypes.c_int), ("region", ctypes.c_int), ("access", ctypes.c_int),
                ("addr", ctypes.c_ulonglong),
                ("region_offset", ctypes.c_ulonglong), ("file", ctypes.c_char_p), ("line", ctypes.c_int),
                ("message", ctypes.c_char * 8192)]


def bind_runtime(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Declare the runtime's entry points on a freshly loaded library."""
    lib.emu_abi_version.restype = ctypes.c_int
    lib.emu_launch.argtypes = [ctypes.POINTER(EmuLaunch), ctypes.POINTER(EmuErrorInfo)]
    lib.emu_launch.restype = ctypes.c_int
    lib.emu_guarded_alloc.argtypes = [ctypes.c_ulonglong, ctypes.POINTER(ctypes.c_void_p),
                                      ctypes.POINTER(ctypes.c_ulonglong)]
    lib.emu_guarded_alloc.restype = ctypes.c_void_p
    lib.emu_guarded_free.argtypes = [ctypes.c_void_p, ctypes.c_ulonglong]
    lib.emu_guarded_free.restype = None
    lib.emu_bench_switch.argtypes = [ctypes.c_long]
    lib.emu_bench_switch.restype = ctypes.c_double
    return lib
