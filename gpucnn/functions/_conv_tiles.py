"""Tile shapes of the conv GEMM kernels (``kernels_cuda/conv.cu``): the CONV_BM/BN/BK/TM/TN knobs the
kernels are compiled with, the launch shape each implies, and the candidates the autotuner
(:mod:`gpucnn.autotune`) times per layer shape on a GPU.

A block of ``(BN/TN) x (BM/TM)`` threads computes a BM x BN tile of the output matrix in BK-deep K-steps;
each thread a TM x TN register micro-tile. Big tiles reuse each loaded value more (fewer global and shared
loads per FMA) but give fewer blocks to fill the GPU and waste work at the edges of small matrices: a
first layer with C_out = 32 fills only half of a 64-row tile; a weight gradient with C_in*kH*kW = 9
columns wastes most of a 64-wide one. Which wins depends on the shape and the GPU: hence the autotuner.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: The largest static shared memory a block may use without opting in (48 KiB on every GPU since sm_30).
SMEM_LIMIT = 48 * 1024
#: Largest BM, BN or BK: conv.py's 32-bit index headroom (_INT32_LIMIT) allows for tiles up to this side.
MAX_SIDE = 256
#: CONV_SMEM_PAD of conv.cu: the A and B slices' rows are BM + 1 and BN + 1 words long.
_SMEM_PAD = 1


@dataclass(frozen=True)
class Tile:
    """One tile configuration: block tile BM x BN, K-step BK, per-thread micro-tile TM x TN."""
    bm: int
    bn: int
    bk: int
    tm: int
    tn: int

    @property
    def threads(self) -> int:
        return (self.bm // self.tm) * (self.bn // self.tn)

    @property
    def block(self) -> tuple[int, int, int]:
        """The launch's block shape: (BN/TN, BM/TM, 1), as the kernels index threadIdx."""
        return (self.bn // self.tn, self.bm // self.tm, 1)

    @property
    def defines(self) -> dict[str, int]:
        """The ``#define`` knobs of conv.cu for this tile."""
        return {"CONV_BM": self.bm, "CONV_BN": self.bn, "CONV_BK": self.bk, "CONV_TM": self.tm, "CONV_TN": self.tn}

    def __str__(self) -> str:
        return f"{self.bm}x{self.bn}x{self.bk}/{self.tm}x{self.tn}"

    def smem_bytes(self, itemsize: int) -> int:
        """Static shared memory of one block: two A slices (BK x (BM + pad)) and two B slices (BK x (BN + pad))."""
        return 2 * self.bk * (self.bm + self.bn + 2 * _SMEM_PAD) * itemsize

    def problems(self, itemsize: int = 8) -> list[str]:
        """Why conv.cu cannot be compiled or launched with this tile (its static_asserts, the thread and
        shared-memory limits); empty when it can. ``itemsize``: the widest dtype it will run (double)."""
        bm, bn, bk, tm, tn = self.bm, self.bn, self.bk, self.tm, self.tn
        if min(bm, bn, bk, tm, tn) < 1:
            return ["every size must be >= 1"]
        out = []
        if max(bm, bn, bk) > MAX_SIDE:
            out.append(f"tile sides above {MAX_SIDE} exceed the kernels' 32-bit index headroom")
        if bm % tm or bn % tn:
            out.append(f"the micro-tile {tm}x{tn} must divide the block tile {bm}x{bn}")
            return out
        t = self.threads
        if t > 1024:
            out.append(f"{t} threads per block, more than 1024")
        if t % 32:
            out.append(f"{t} threads per block, not a multiple of the 32-thread warp")
        # conv.cu's static_asserts on its tile-load mappings: A rows CONV_A_MSTEP = threads/BK apart, B rows
        # CONV_B_KSTEP = threads/BN apart, weight-gradient B columns CONV_BW_NSTEP = threads/BK apart.
        if t % bk or bm % (t // bk or bm + 1) or bn % (t // bk or bn + 1):
            out.append(f"A-tile loads: threads ({t}) must be a multiple of BK ({bk}), and BM ({bm}) and BN "
                       f"({bn}) multiples of threads/BK")
        if t % bn or bk % (t // bn or bk + 1):
            out.append(f"B-tile loads: threads ({t}) must be a multiple of BN ({bn}), and BK ({bk}) of threads/BN")
        smem = self.smem_bytes(itemsize)
        if smem > SMEM_LIMIT:
            out.append(f"{smem} bytes of shared memory per block, more than {SMEM_LIMIT}")
        return out

    @classmethod
    def parse(cls, text: str) -> "Tile":
        """``"BMxBNxBK/TMxTN"`` (as ``str(tile)`` writes it) -> Tile; ValueError when malformed."""
        m = re.fullmatch(r"\s*(\d+)x(\d+)x(\d+)/(\d+)x(\d+)\s*", text)
        if not m:
            raise ValueError(f"expected BMxBNxBK/TMxTN, e.g. 64x64x16/8x4, got {text!r}")
        return cls(*(int(g) for g in m.groups()))


#: conv.cu's own #ifndef defaults (tests check that they agree): 128 threads, 8x4 per thread.
DEFAULT = Tile(64, 64, 16, 8, 4)

#: What the autotuner times, the default first (its choice when tuning is off). Every one is checked on
#: the emulator against the NumPy path and compiled by NVRTC without spills (tests/functions/
#: test_conv_kernels.py, tests/kernels/test_kernel_compile.py).
CANDIDATES: tuple[Tile, ...] = (
    DEFAULT,
    Tile(128, 64, 8, 8, 4),   # 256 threads: tall output tiles (C_out >= 128), half the B loads per FMA
    Tile(64, 128, 8, 4, 8),   # 256 threads: wide tiles for long N (batch * pixels) and few channels
    Tile(128, 128, 8, 8, 8),  # 256 threads, 64 accumulators each: big layers, most reuse
    Tile(32, 64, 16, 4, 4),   # 128 threads: C_out = 32 (a first layer) without an idle half tile
    Tile(64, 32, 16, 4, 4),   # 128 threads: narrow N, e.g. weight gradients with C_in*kH*kW <= 32
)

