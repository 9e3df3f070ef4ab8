"""C++ code appended to a kernel file: one info function per kernel, and the module's metadata."""
from __future__ import annotations

import json

from .signatures import KernelSignature


def c_string(text: str) -> str:
    """A C string literal for arbitrary text (split every 200 bytes to keep lines short)."""
    data = text.encode("utf-8")
    pieces = []
    for i in range(0, len(data), 200):
        chunk = "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\?' else f"\\{b:03o}" for b in data[i:i + 200])
        pieces.append(f'"{chunk}"')
    return "\n    ".join(pieces) or '""'


def generate(kernels: list[KernelSignature], metadata: dict) -> str:
    """Code defining ``__emu_kernel_info_<name>`` for each kernel, ``__emu_module_info`` and
    ``__emu_module_json`` (kernel names, parameter names, launch bounds)."""
    weak = "__attribute__((__weak__))"
    out = ['#line 1 "<gpucnn-emu-trampolines>"',
           f'extern "C" char __start_emu_shared_common[] {weak};',
           f'extern "C" char __stop_emu_shared_common[] {weak};',
           'extern "C" void __emu_module_info(EmuModuleInfo *__m) {',
           '  ::__emu::fill_module(__m, __start_emu_shared_common, __stop_emu_shared_common);',
           '}']
    for k in kernels:
        n = k.name
        out += [
            f'extern "C" char __start_emu_sh_{n}[] {weak};',
            f'extern "C" char __stop_emu_sh_{n}[] {weak};',
            f'static void __emu_tramp_{n}(void **__a) {{ ::__emu::call({k.qualified}, __a); }}',
            f'extern "C" void __emu_kernel_info_{n}(EmuKernelInfo *__i) {{',
            f'  ::__emu::fill_info(__i, __emu_tramp_{n}, {k.qualified}, __start_emu_sh_{n}, __stop_emu_sh_{n});',
            '}',
        ]
    meta = dict(metadata)
    meta["kernels"] = [{"name": k.name, "launch_bounds": k.launch_bounds,
                        "params": [{"name": p.name, "text": p.text} for p in k.params]} for k in kernels]
    out.append('extern "C" const char *__emu_module_json(void) {')
    out.append(f"  return {c_string(json.dumps(meta))};")
    out.append("}")
    return "\n".join(out) + "\n"
