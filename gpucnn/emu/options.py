"""Translation of NVRTC/CuPy compile options into g++ arguments."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import CompileError

# NVRTC options that only tune GPU code generation: accepted and ignored. (`--fmad=true`, NVRTC's
# default, is ignored too: the emulator never contracts a*b+c into an FMA.)
_IGNORED_FLAGS = {
    "-lineinfo", "--generate-line-info", "-G", "--device-debug", "-restrict", "--restrict",
    "-extra-device-vectorization", "--extra-device-vectorization", "-default-device",
    "--device-as-default-execution-space",
    "-dlto", "--dlto", "-ewp", "--extensible-whole-program", "--no-source-include", "-no-source-include",
    "-builtin-move-forward=true", "-builtin-initializer-list=true", "-w", "--disable-warnings",
    "-Werror=all-warnings", "--Werror=all-warnings", "-dw", "--dopt=on", "-dopt=on",
}
_IGNORED_PREFIXES = (
    "-std=", "--std=", "-arch=", "--gpu-architecture=", "-arch=sm_", "--fmad=", "-fmad=", "-ftz=", "--ftz=",
    "-prec-div=", "--prec-div=", "-prec-sqrt=", "--prec-sqrt=", "-maxrregcount=", "--maxrregcount=",
    "-Xptxas", "--ptxas-options=", "-rdc=false", "--relocatable-device-code=false", "-dopt=", "--dopt=",
    "-minimal", "--minimal", "-split-compile", "--split-compile", "-ofast-compile", "--Ofast-compile",
    "-O", "-lto", "--lto",
)
# Flags that take their value as the next option.
_IGNORED_WITH_VALUE = {"-arch", "--gpu-architecture", "-maxrregcount", "--maxrregcount", "-std", "--std"}
_FAST_MATH = {"--use_fast_math", "-use_fast_math", "--use-fast-math", "-use-fast-math"}


@dataclass
class CompileOptions:
    """What NVRTC options mean for g++.

    Macros and pre-includes become ``prelude`` lines placed after shim.h and before the kernel source,
    rather than -D flags: a ``-DT=float`` on the command line would also rewrite shim.h's own templates.
    """

    prelude: list[str] = field(default_factory=list)
    gxx_args: list[str] = field(default_factory=list)
    include_dirs: list[str] = field(default_factory=list)
    std: str = "c++17"


def _define_line(value: str) -> str:
    name, eq, body = value.partition("=")
    return f"#define {name} {body if eq else '1'}"


def translate(options: tuple[str, ...] | list[str], filename: str) -> CompileOptions:
    """Map CuPy ``RawModule`` options to g++ arguments; reject what the CPU cannot honour."""
    out = CompileOptions()
    opts = list(options)
    i = 0
    while i < len(opts):
        opt = opts[i]
        if not isinstance(opt, str):
            raise CompileError(f"{filename}: options must be strings, got {opt!r} in {tuple(options)!r}")
        nxt = opts[i + 1] if i + 1 < len(opts) else None
        i += 1
        if opt in _FAST_MATH:
            raise CompileError(f"{filename}: option {opt} is not supported by the emulator (gpucnn never uses "
                               "fast math: its results would not match the CPU reference)")
        for short, long_ in (("-D", "--define-macro"), ("-U", "--undefine-macro"), ("-I", "--include-path"),
                             ("-include", "--pre-include")):
            value = None
            if opt in (short, long_):
                if nxt is None:
                    raise CompileError(f"{filename}: option {opt} needs a value")
                value = nxt
                i += 1
            elif opt.startswith(long_ + "="):
                value = opt[len(long_) + 1:]
            elif opt.startswith(short) and short != "-include" and len(opt) > len(short):
                value = opt[len(short):]
            if value is not None:
                if short == "-I":
                    out.include_dirs.append(value)
                    out.gxx_args += ["-I", value]
                elif short == "-include":
                    path = os.path.abspath(value) if os.path.exists(value) else value
                    out.prelude.append(f'#include "{path}"')
                elif short == "-D":
                    out.prelude.append(_define_line(value))
                else:
                    out.prelude.append(f"#undef {value}")
                break
        else:
            if opt in ("-std=c++20", "--std=c++20", "-std=c++2a"):
                out.std = "c++20"
            elif opt in _IGNORED_WITH_VALUE:
                i += 1
            elif opt in _IGNORED_FLAGS or opt.startswith(_IGNORED_PREFIXES):
                pass
            elif opt in ("-rdc=true", "--relocatable-device-code=true"):
                raise CompileError(f"{filename}: option {opt} (separate compilation) is not supported by the emulator")
            else:
                raise CompileError(f"{filename}: unknown NVRTC option {opt!r} (options: {tuple(options)!r}); "
                                   "the emulator accepts -D/-U/-I/-include and ignores GPU code-generation flags")
    return out
