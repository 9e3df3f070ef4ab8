// conv2d (and conv1d as conv2d with H = 1) on the tensor cores: the three implicit GEMMs of conv.cu
// (forward, backward-data, backward-filter) on warp-level mma.sync, fp32 accumulation.
//
// Element type (CONV_TC_ELEM, a #define; T is not used: float64 stays on conv.cu's SIMT kernels):
//   0  float32 operands rounded to TF32 (cvt.rna.tf32.f32) when a fragment is read from shared memory,
//      mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32;
//   1  float16,  mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32;
//   2  bfloat16, mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32.
// 16-bit operands are passed as their bit patterns (unsigned short*: the host passes a uint16 view of the
// float16 / bfloat16 array), and converted with lowp.cuh's integer code (tc_to_elem / tc_from_elem, round
// to nearest even as __float2half_rn / __float2bfloat16_rn), so the file needs neither cuda_fp16.h nor
// cuda_bf16.h: the NVRTC of the nvidia-cuda-nvrtc-cu12 wheel ships neither header.
//
// Layouts (C-contiguous, as conv.cu): x (N, C, H, W), w (C_out, C, kH, kW), bias (C_out,),
// y / gy (N, C_out, OH, OW). The GEMMs (q = (n, oh, ow), k = (c, r, s), j = (co, r, s)):
//   forward          Y[co, q]   = sum_k W[co, k]    * Col[k, q]           M = C_out, N = N*OH*OW, K = C*kH*kW
//   backward-data    GXp[c, p'] = sum_j Wd[c, j]    * GYg[j, p']          M = C,     N = N*HD*WD, K = C_out*kH*kW
//   backward-filter  GW[co, k]  = sum_q GY[co, q]   * Col[k, q]           M = C_out, N = C*kH*kW, K = N*OH*OW
// Col is the im2col of x through the padding mode (a padded coordinate is mapped to its source pixel by
// tc_pad_source, or to zero). Backward-data runs over a grid of padded positions p' = (n, hp, wp) (the
// whole padded input (HD, WD) = (Hp, Wp) from (0, 0), or for zeros padding only the interior (H, W) from
// (pt, pl)); every GYg element is then ONE gy value (the output whose tap (r, s) reads (hp, wp), or zero),
// never a sum, so rounding operands to TF32 rounds exactly gy and w. For reflect / replicate / circular the
// padded-grid result goes to a float32 workspace that conv_tc_fold adds back onto the source pixels.
//
// Block tile TC_BM x TC_BN = 64 x 64, K-step TC_BK = 64 bytes of K (16 TF32 or 32 16-bit elements),
// 128 threads = 4 warps as 2 (M) x 2 (N); warp (wm, wn) owns the 32 x 32 sub-tile rows wm*32.., columns
// wn*32..: TC_MI x TC_NI = 2 x 4 mma tiles of 16 x 8, so 8 mma.sync per 8 (TF32) / 16 (16-bit) deep
// k-slice, 2 slices per K-step.
//
// Shared memory: TC_STAGES = 3 stages of an A slice (TC_BM rows) and a B slice (TC_BN rows), both stored
// K-contiguous ([row][k]: A as row-major M x K, B as column-major K x N, i.e. "row.col"), each row
// TC_BK_WORDS = 16 32-bit words of data plus 4 words of padding: a row stride of 20 words (80 bytes).
// Conflict-free: a TF32 fragment read touches word (row0 + g)*20 + t (+ const) for lanes g = lane>>2,
// t = lane&3, i.e. banks 20g + t mod 32 = {0,20,8,28,16,4,24,12} + t: all 32 distinct; an ldmatrix phase
// reads 8 rows of 16 bytes at 80-byte strides: banks 20i..20i+3 mod 32 for i = 0..7, again all distinct.
//
// Fragments (PTX ISA, "Warp Level Matrix Multiply-Accumulate Instructions", "Matrix Fragments for
// mma.m16n8k8" and "... for mma.m16n8k16 with floating point type"; g = lane>>2, t = lane&3; rows and
// columns relative to the mma tile):
//   TF32 m16n8k8: a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4); b0 (k=t, n=g), b1 (k=t+4, n=g):
//     read with 32-bit shared loads (ldmatrix moves 16-bit elements only; a 32-bit element would arrive
//     split over two lanes) and rounded with cvt.rna.tf32.f32 (PTX ISA, "Data Movement and Conversion
//     Instructions: cvt": .rna = round to nearest, ties away from zero; raw FP32 bits fed to a TF32 mma
//     would be truncated instead).
//   16-bit m16n8k16: A regs {a0,a1} (g, 2t..2t+1), {a2,a3} (g+8, 2t..), {a4,a5} (g, 2t+8..),
//     {a6,a7} (g+8, 2t+8..); B regs {b0,b1} (k=2t..2t+1, n=g), {b2,b3} (k=2t+8.., n=g). Loaded with
//     ldmatrix.sync.aligned.m8n8.x4.shared.b16 (PTX ISA, "Warp Level Matrix Load Instruction: ldmatrix";
//     lane l gives the row address of matrix l>>3, row l&7; each lane receives (row g, columns 2t, 2t+1)
//     of every matrix): A takes the
//     four 8x8 quarters of a 16 x 16 tile in the order (rows +0, k +0), (+8, +0), (+0, +8), (+8, +8); B, whose
//     shared rows are n, takes (n +0, k +0), (n +0, k +8), (n +8, k +0), (n +8, k +8) = the two B registers
//     of two neighbouring n8 tiles. No .trans is needed: both operands are K-contiguous in shared memory.
//   C/D (both shapes): c0, c1 at (g, 2t), (g, 2t+1); c2, c3 at (g+8, 2t), (g+8, 2t+1).
//
// Global -> shared. Loader mapping: thread tid owns tile row tid % 64 of each operand (the row's fixed
// part decoded once per kernel) and, of every K-step, the TC_HALF_WORDS = 8 words (tid / 64) * 8 .. + 7 of
// that row, i.e. TC_HALF consecutive K indices (8 TF32 / 16 16-bit): a warp copies 32 consecutive tile rows
// (consecutive output positions: neighbouring x addresses at stride 1), and a thread's K indices are one
// run (contiguous in memory where the operand is). Two kinds of operand (PTX ISA, "Data Movement and
// Conversion Instructions: cp.async" for every copy; one cp.async.commit_group per K-step, empty ones too,
// cp.async.wait_group TC_STAGES-2 then __syncthreads() before a stage is read: a TC_STAGES-deep pipeline
// with one barrier per K-step):
//   Contiguous ("runs", TcRuns): element (m, q) at ((n*R + m)*P + p) for q = n*P + p: forward's w rows,
//     backward-data's w transposed by the host to (C, C_out, kH, kW), backward-filter's gy ((n, co) runs
//     of OH*OW), and a pointwise conv's x in backward-filter (conv_tc_backward_filter_pointwise). Copied
//     with cp.async of `vec` bytes, a runtime argument per operand chosen by the host
//     (_conv_tc.copy_width): 16 (cp.async.cg, L2 only), 8 or 4 (.ca), the widest that divides the run's
//     bytes P*size and the array's address, so that each copy is aligned and inside one run; copies past
//     the end (the K tail, rows >= M) have src-size 0 (zero-filled, nothing read). 16-bit runs of odd
//     length (vec 0) go through registers as the gathers below.
//   Gathered (TcGather: im2col through four padding modes, stride and dilation; backward-data's gy per
//     padded position): arbitrary element gathers. TF32: one 4-byte cp.async.ca per element, src-size 0 for
//     a zero (padding, outside the problem). 16-bit: cp.async moves at least 4 bytes, two neighbouring K
//     elements, which a gather does not have in general (for NCHW x, neighbouring k = (c, r, s) are
//     neighbouring taps, not neighbouring addresses); each thread loads its elements for the K-step
//     TC_STAGES-1 ahead into registers before the math of the current one and stores them as packed pairs
//     (two 16-byte st.shared) after it.
//
// Determinism: every output element is written by one thread, the K loop runs in a fixed order, split-K
// partial sums go to a workspace that conv_tc_splitk_reduce adds in split order; no atomics.
// 32-bit indexing: the host (gpucnn/functions/_conv_tc.py) checks every size against int32.
#include "common.cuh"
#include "lowp.cuh"  // float <-> float16 / bfloat16 bits (common.cuh includes it only for T = 16 bits)

#define TC_TF32 0
#define TC_F16 1
#define TC_BF16 2
#ifndef CONV_TC_ELEM
#define CONV_TC_ELEM TC_TF32
#endif
#if CONV_TC_ELEM == TC_TF32
typedef float tc_elem;  // what the operand arrays hold
#define TC_ELEM_BYTES 4
#else
typedef unsigned short tc_elem;  // float16 / bfloat16 bits
#define TC_ELEM_BYTES 2
#endif

#define TC_BM 64
#define TC_BN 64
#define TC_THREADS 128
#define TC_BK_WORDS 16                              // 32-bit words of K per shared row and K-step
#define TC_BK (TC_BK_WORDS * 4 / TC_ELEM_BYTES)     // K elements per K-step: 16 (TF32) or 32 (16-bit)
#define TC_ROW_WORDS (TC_BK_WORDS + 4)              // + 4 words of padding: conflict-free (see above)
#ifndef TC_STAGES
#define TC_STAGES 3
#endif
#define TC_MI 2  // m16 tiles per warp
#define TC_NI 4  // n8 tiles per warp
#define TC_HALF_WORDS (TC_BK_WORDS / 2)  // words one thread copies per operand and K-step (half a row)
#define TC_HALF (TC_BK / 2)              // K indices one thread copies per operand and K-step
static_assert(TC_BM == TC_BN && TC_BM * 2 == TC_THREADS, "loader mapping: a thread owns row tid % 64");
static_assert(TC_HALF_WORDS % 4 == 0, "a thread's half row is whole 16-byte copies");
static_assert(TC_STAGES >= 2, "the pipeline needs at least two stages");

#define CONV_PAD_ZEROS 0  // the modes, as gpucnn.functions.conv.PADDING_MODES (and conv.cu)
#define CONV_PAD_REFLECT 1
#define CONV_PAD_REPLICATE 2
#define CONV_PAD_CIRCULAR 3

#if __CUDA_ARCH__ >= 800 || defined(GPUCNN_EMU)
#define TC_ARCH_OK 1  // cp.async and the TF32/BF16 mma need sm_80; older archs get a __trap() body
#else
#define TC_ARCH_OK 0
#endif

typedef unsigned TcStage[TC_BM + TC_BN][TC_ROW_WORDS];  // A rows 0..63, then B rows (as 32-bit words)

// tc_elem <-> float (the epilogue's output, the bias): lowp.cuh's bit-exact conversions (round to nearest
// even, as __float2half_rn / __float2bfloat16_rn; shared with pooling and batch norm).
#if CONV_TC_ELEM == TC_TF32
__device__ __forceinline__ tc_elem tc_to_elem(float v) { return v; }
__device__ __forceinline__ float tc_from_elem(tc_elem v) { return v; }
#elif CONV_TC_ELEM == TC_F16
__device__ __forceinline__ tc_elem tc_to_elem(float v) { return gpucnn_float_to_half_bits(v); }
__device__ __forceinline__ float tc_from_elem(tc_elem v) { return gpucnn_half_bits_to_float(v); }
#else
__device__ __forceinline__ tc_elem tc_to_elem(float v) { return gpucnn_float_to_bf16_bits(v); }
__device__ __forceinline__ float tc_from_elem(tc_elem v) { return gpucnn_bf16_bits_to_float(v); }
#endif

// -- index helpers -----------------------------------------------------------------------------------------

// The source coordinate in [0, n) of position i (= padded - before) along a dim of input size n, or -1
// when that padded position is zero. The host guarantees padding < n for reflect, <= n for circular.
__device__ __forceinline__ int tc_pad_source(int i, int n, int mode) {
  if (i >= 0 && i < n) return i;
  if (mode == CONV_PAD_REFLECT) return i < 0 ? -i : 2 * (n - 1) - i;
  if (mode == CONV_PAD_REPLICATE) return i < 0 ? 0 : n - 1;
  if (mode == CONV_PAD_CIRCULAR) return i < 0 ? i + n : i - n;
  return -1;
}

// Geometry of one conv, as passed by the host (one struct: the operand gathers below share it).
struct TcGeo {
  int N, C, H, W, Co, kH, kW, OH, OW, sh, sw, dh, dw, pt, pl, mode;
};

// The gathered operands: element (tile row, K index) -> its index in the operand's array, or -1 for a zero.
// Each is a cursor over the K indices of one thread's share of a tile row (TC_HALF consecutive K indices
// per K-step, see "Loader mapping" at the top): bind() places it on the thread's first K index (the only
// divisions: once per kernel), offset() is the element under it, step() moves it one K index on, jump()
// moves the bound position one K-step (TC_BK) on by the precomputed digits of TC_BK in the K index's mixed
// radix (CUTLASS's "precomputed deltas"); the copier steps a copy of the cursor through the K-step and
// jumps the original. A digit plus a delta digit wraps at most once (both are below the radix), so each
// move is adds and compares. conv.cu's SIMT kernels step their ConvKPos the same way.

// K index -> digits (d2, d1, d0) in radix (., R1, R0) and d1 * R1 * R0 ... (the bind-time decode)
struct TcDigits {
  int d2, d1, d0;
};
__device__ __forceinline__ TcDigits tc_digits(int k, int R1, int R0) {
  TcDigits d;
  d.d2 = k / (R1 * R0);
  const int rest = k - d.d2 * R1 * R0;
  d.d1 = rest / R0;
  d.d0 = rest - d.d1 * R0;
  return d;
}

// An im2col cursor: position (o2, d1, d0) with u1 = b1 + d1*e1 and u0 = b0 + d0*e0 the padded coordinates
// (before the padding map), o2 the outer digit's offset (a multiple of inc2, below end2 inside the
// operand); the element is x[fix + o2 + pad(u1)*W + pad(u0)], zero when !ok, o2 >= end2 or the padding
// map gives none. Forward B (tile row q = (n, oh, ow), K index k = (c, r, s)): digits (c, r, s) in radix
// (kH, kW), steps (dh, dw), bases (oh*sh - pt, ow*sw - pl), inc2 = H*W, end2 = C*H*W, fix = x offset of
// image n. Backward-filter B (tile row k, K index q): digits (n, oh, ow) in radix (OH, OW), steps (sh, sw),
// bases (r*dh - pt, s*dw - pl), inc2 = C*H*W, end2 = N*C*H*W, fix = c*H*W.
struct TcIm2col {
  int fix, b1, b0, R1, R0, e1, e0, inc2, end2;
  bool ok;
  int o2, d1, d0, u1, u0;                 // the cursor
  int J1, J0, J1e, J0e, R1e, R0e, J2inc;  // TC_BK's digits (J2, J1, J0); J*e: times the steps; R*e = R*e
  __device__ __forceinline__ void init(int k0) {
    const TcDigits d = tc_digits(k0, R1, R0), j = tc_digits(TC_BK, R1, R0);
    o2 = d.d2 * inc2; d1 = d.d1; d0 = d.d0; u1 = b1 + d1 * e1; u0 = b0 + d0 * e0;
    J1 = j.d1; J0 = j.d0; J1e = j.d1 * e1; J0e = j.d0 * e0; R1e = R1 * e1; R0e = R0 * e0; J2inc = j.d2 * inc2;
  }
  __device__ __forceinline__ int offset(const TcGeo& g) const {
    if (!ok || o2 >= end2) return -1;
    const int hi = tc_pad_source(u1, g.H, g.mode), wi = tc_pad_source(u0, g.W, g.mode);
    return (hi >= 0 && wi >= 0) ? fix + o2 + hi * g.W + wi : -1;
  }
  __device__ __forceinline__ void step(const TcGeo&) {
    u0 += e0;
    if (++d0 == R0) {
      d0 = 0; u0 = b0; u1 += e1;
      if (++d1 == R1) { d1 = 0; u1 = b1; o2 += inc2; }
    }
  }
  __device__ __forceinline__ void jump(const TcGeo&) {
    d0 += J0; u0 += J0e;
    if (d0 >= R0) { d0 -= R0; u0 -= R0e; ++d1; u1 += e1; }
    d1 += J1; u1 += J1e;
    if (d1 >= R1) { d1 -= R1; u1 -= R1e; o2 += inc2; }
    o2 += J2inc;
  }
};
struct TcFwdB : TcIm2col {  // forward B: Col[k, q], tile row q; K index k = (c, r, s)
  __device__ __forceinline__ void bind(const TcGeo& g, int q, int k0) {
    const int OHW = g.OH * g.OW;
    ok = q < g.N * OHW;
    const int n = ok ? q / OHW : 0, p = ok ? q - n * OHW : 0, oh = p / g.OW, ow = p - oh * g.OW;
    fix = n * g.C * g.H * g.W; b1 = oh * g.sh - g.pt; b0 = ow * g.sw - g.pl;
    R1 = g.kH; R0 = g.kW; e1 = g.dh; e0 = g.dw; inc2 = g.H * g.W; end2 = g.C * inc2;
    init(k0);
  }
};
struct TcWgradB : TcIm2col {  // backward-filter B: Col[k, q] with tile row k = (c, r, s), K index q = (n, oh, ow)
  __device__ __forceinline__ void bind(const TcGeo& g, int k, int q0) {
    const int kHW = g.kH * g.kW;
    ok = k < g.C * kHW;
    const int c = ok ? k / kHW : 0, rs = ok ? k - c * kHW : 0, r = rs / g.kW, s = rs - r * g.kW;
    fix = c * g.H * g.W; b1 = r * g.dh - g.pt; b0 = s * g.dw - g.pl;
    R1 = g.OH; R0 = g.OW; e1 = g.sh; e0 = g.sw; inc2 = g.C * g.H * g.W; end2 = g.N * inc2;
    init(q0);
  }
};

// (a, ra) -= (q, r) and += (q, r) for a value a*d + ra kept with 0 <= ra < d (0 <= r < d): a borrow or a
// carry instead of a division.
__device__ __forceinline__ void tc_divsub(int& a, int& ra, int q, int r, int d) {
  a -= q; ra -= r;
  if (ra < 0) { ra += d; --a; }
}
__device__ __forceinline__ void tc_divadd(int& a, int& ra, int q, int r, int d) {
  a += q; ra += r;
  if (ra >= d) { ra -= d; ++a; }
}
__device__ __forceinline__ void tc_floordiv(int v, int d, int& q, int& r) {  // floor division, any sign of v
  q = v / d; r = v - q * d;
  if (r < 0) { r += d; --q; }
}

// Backward-data B: GYg[j, p'] with tile row p' = (n, hh, ww) of the (HD, WD) grid (padded coordinates
// hp = hh + oh0, wp = ww + ow0), K index j = (co, r, s): the output (oh, ow) whose tap (r, s) reads
// (hp, wp), hp = oh*sh + r*dh, wp = ow*sw + s*dw, or zero. The cursor keeps hp - r*dh = oh*sh + rh and
// wp - s*dw = ow*sw + rw as (quotient, remainder) pairs, moved with borrows and carries by the
// precomputed divmods of dh, dw (a step), of TC_BK's digits times dh, dw (a jump) and of kH*dh, kW*dw (a
// wrap): an element is there when rh == rw == 0 and (oh, ow) is inside the output.
struct TcDgradB {
  int gbase, HD, WD, oh0, ow0;  // gy offset of image n; the grid (set by the kernel before bind)
  bool ok;
  int co, r, s, oh, rh, ow, rw;  // the cursor (co as co*OH*OW)
  int ohb, rhb, owb, rwb;        // (oh, rh) at r = 0, (ow, rw) at s = 0
  int qh, rdh, qw, rdw;          // divmod(dh, sh), divmod(dw, sw)
  int J1, J0, J2c, qJ1, rJ1, qJ0, rJ0, qR1, rR1, qR0, rR0;  // TC_BK's digits; divmods of J1*dh, J0*dw, kH*dh, kW*dw
  __device__ __forceinline__ void bind(const TcGeo& g, int p, int j0) {
    const int HWD = HD * WD, OHW = g.OH * g.OW;
    ok = p < g.N * HWD;
    const int n = ok ? p / HWD : 0, hw = ok ? p - n * HWD : 0, hh = hw / WD;
    gbase = n * g.Co * OHW;
    tc_floordiv(hh + oh0, g.sh, ohb, rhb);
    tc_floordiv(hw - hh * WD + ow0, g.sw, owb, rwb);
    tc_floordiv(g.dh, g.sh, qh, rdh);
    tc_floordiv(g.dw, g.sw, qw, rdw);
    const TcDigits d = tc_digits(j0, g.kH, g.kW), j = tc_digits(TC_BK, g.kH, g.kW);
    co = d.d2 * OHW; r = d.d1; s = d.d0;
    tc_floordiv(hh + oh0 - r * g.dh, g.sh, oh, rh);
    tc_floordiv(hw - hh * WD + ow0 - s * g.dw, g.sw, ow, rw);
    J1 = j.d1; J0 = j.d0; J2c = j.d2 * OHW;
    tc_floordiv(J1 * g.dh, g.sh, qJ1, rJ1);
    tc_floordiv(J0 * g.dw, g.sw, qJ0, rJ0);
    tc_floordiv(g.kH * g.dh, g.sh, qR1, rR1);
    tc_floordiv(g.kW * g.dw, g.sw, qR0, rR0);
  }
  __device__ __forceinline__ int offset(const TcGeo& g) const {
    if (!ok || co >= g.Co * g.OH * g.OW || (rh | rw) != 0 || (unsigned)oh >= (unsigned)g.OH ||
        (unsigned)ow >= (unsigned)g.OW)
      return -1;
    return gbase + co + oh * g.OW + ow;
  }
  __device__ __forceinline__ void step(const TcGeo& g) {
    if (++s == g.kW) {
      s = 0; ow = owb; rw = rwb;
      if (++r == g.kH) { r = 0; oh = ohb; rh = rhb; co += g.OH * g.OW; }
      else tc_divsub(oh, rh, qh, rdh, g.sh);
    } else {
      tc_divsub(ow, rw, qw, rdw, g.sw);
    }
  }
  __device__ __forceinline__ void jump(const TcGeo& g) {
    s += J0;
    tc_divsub(ow, rw, qJ0, rJ0, g.sw);
    if (s >= g.kW) {
      s -= g.kW;
      tc_divadd(ow, rw, qR0, rR0, g.sw);
      ++r;
      tc_divsub(oh, rh, qh, rdh, g.sh);
    }
    r += J1;
    tc_divsub(oh, rh, qJ1, rJ1, g.sh);
    if (r >= g.kH) {
      r -= g.kH;
      tc_divadd(oh, rh, qR1, rR1, g.sh);
      co += g.OH * g.OW;
    }
    co += J2c;
  }
};

// -- PTX wrappers --------------------------------------------------------------------------------------

__device__ __forceinline__ unsigned tc_smem_addr(const void* p) {
  return (unsigned)__cvta_generic_to_shared(p);
}

#if TC_ARCH_OK
// 4-byte cp.async; src_bytes 0 zero-fills the destination without reading src (PTX ISA "cp.async").
__device__ __forceinline__ void tc_cp_async4(unsigned dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
// 8- and 16-byte cp.async (the contiguous operands, TcRuns). The 16-byte copy is .cg (cached in L2 only:
// a tile row is read once per block); .cg takes 16 bytes only, so the 8-byte one is .ca.
__device__ __forceinline__ void tc_cp_async8(unsigned dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void tc_cp_async16(unsigned dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
template <int V>
__device__ __forceinline__ void tc_cp_async(unsigned dst, const void* src, int src_bytes) {
  if (V == 16) tc_cp_async16(dst, src, src_bytes);
  else if (V == 8) tc_cp_async8(dst, src, src_bytes);
  else tc_cp_async4(dst, src, src_bytes);
}
__device__ __forceinline__ void tc_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void tc_cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ unsigned tc_tf32(unsigned bits) {  // cvt.rna.tf32.f32 (PTX ISA "cvt")
  unsigned r;
  asm volatile("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(__uint_as_float(bits)));
  return r;
}

__device__ __forceinline__ void tc_ldmatrix_x4(unsigned (&d)[4], unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
               : "r"(addr));
}

// d += a * b on one 16 x 8 tile (PTX ISA "Warp Level Matrix Multiply-Accumulate Instructions: mma").
__device__ __forceinline__ void tc_mma_tf32(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
               "{%8, %9}, {%10, %11, %12, %13};\n"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1),
                 "f"(d[0]), "f"(d[1]), "f"(d[2]), "f"(d[3]));
}
__device__ __forceinline__ void tc_mma_16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
#if CONV_TC_ELEM == TC_F16
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
               "{%8, %9}, {%10, %11, %12, %13};\n"
#else
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
               "{%8, %9}, {%10, %11, %12, %13};\n"
#endif
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1),
                 "f"(d[0]), "f"(d[1]), "f"(d[2]), "f"(d[3]));
}
#endif  // TC_ARCH_OK

// -- the shared main loop ------------------------------------------------------------------------------

typedef float TcAcc[TC_MI][TC_NI][4];

#if TC_ARCH_OK
// A thread's TC_HALF_WORDS staged words to consecutive shared words (16-byte aligned: 80-byte rows, a
// half row starts at byte 0 or 32): 16-byte st.shared.v4.
__device__ __forceinline__ void tc_store_words(unsigned* dst, const unsigned (&w)[TC_HALF_WORDS]) {
#pragma unroll
  for (int i = 0; i < TC_HALF_WORDS / 4; ++i) {
    uint4 v;
    v.x = w[4 * i]; v.y = w[4 * i + 1]; v.z = w[4 * i + 2]; v.w = w[4 * i + 3];
    reinterpret_cast<uint4*>(dst)[i] = v;
  }
}

// A gathered operand's copies (Op: TcFwdB, TcWgradB, TcDgradB): thread tid owns shared row `row` (tile row
// tid % 64 of its operand) and the words word0 .. word0 + TC_HALF_WORDS - 1 (word0 = (tid / 64) *
// TC_HALF_WORDS) of each K-step, i.e. TC_HALF consecutive K indices. TF32: one 4-byte cp.async per element,
// straight into the stage. 16-bit: fetch() loads the elements into registers, put() stores them later.
template <class Op>
struct TcGather {
  Op op;
  const tc_elem* src;
  int row, word0;
#if CONV_TC_ELEM != TC_TF32
  unsigned staged[TC_HALF_WORDS];
#endif

  __device__ __forceinline__ void fetch(const TcGeo& g, TcStage& st) {
    Op cur = op;
#pragma unroll
    for (int i = 0; i < TC_HALF_WORDS; ++i) {
#if CONV_TC_ELEM == TC_TF32
      const int off = cur.offset(g);
      tc_cp_async4(tc_smem_addr(&st[row][word0 + i]), src + (off >= 0 ? off : 0), off >= 0 ? 4 : 0);
      if (i + 1 < TC_HALF_WORDS) cur.step(g);
#else
      const int o0 = cur.offset(g);
      cur.step(g);
      const int o1 = cur.offset(g);
      if (i + 1 < TC_HALF_WORDS) cur.step(g);
      const unsigned lo = o0 >= 0 ? src[o0] : 0u, hi = o1 >= 0 ? src[o1] : 0u;
      staged[i] = lo | (hi << 16);  // the lower K index in the low half (PTX's .f16x2 / .bf16x2 packing)
#endif
    }
    op.jump(g);
  }
  __device__ __forceinline__ void put(TcStage& st) const {
#if CONV_TC_ELEM != TC_TF32
    tc_store_words(&st[row][word0], staged);
#endif
  }
};

// A contiguous operand ("runs"): element (tile row m, K index q = n*P + p, 0 <= p < P) is
// src[(n*R + m)*P + p], zero when m >= R or n >= Nimg. Forward's w (R = C_out, P = C*kH*kW, Nimg = 1),
// backward-data's transposed w (R = C, P = C_out*kH*kW, Nimg = 1), backward-filter's gy (R = C_out,
// P = OH*OW, Nimg = N) and, for a pointwise conv (1x1, stride 1, no padding), its x (R = C, P = H*W,
// Nimg = N). Same ownership as TcGather. vec (the same for the whole launch, from the host): the bytes per
// cp.async, 16 (.cg), 8 or 4 (.ca): the host picks the widest that divides both P's bytes and the
// array's address, so that no copy straddles two runs or is misaligned (a K index the thread reaches is a
// multiple of 8, hence of every copy's element count); 0 (16-bit only, P odd): per element through
// registers as TcGather. The thread's position (n, p) steps by one copy, wraps at P, and jumps a K-step
// with the precomputed divmod(TC_BK, P): no division in the loop.
struct TcRuns {
  const tc_elem* src;
  int row, word0, vec;
  int P, Nimg, RP;          // run length, images, elements per image (R*P)
  int n, p, base;           // position of the thread's first K index this K-step; base = (n*R + m)*P
  int jn, jp;               // divmod(TC_BK, P)
  bool rowok;
#if CONV_TC_ELEM != TC_TF32
  unsigned staged[TC_HALF_WORDS];
#endif

  __device__ __forceinline__ void bind(const tc_elem* a, int shared_row, int m, int R, int P_, int Nimg_, int q0,
                                       int vec_) {
    src = a; row = shared_row; word0 = (threadIdx.x / TC_BM) * TC_HALF_WORDS; vec = vec_;
    P = P_; Nimg = Nimg_; RP = R * P_; rowok = m < R;
    n = q0 / P; p = q0 - n * P; base = (n * R + m) * P;
    jn = TC_BK / P; jp = TC_BK - jn * P;
  }
  template <int V>
  __device__ __forceinline__ void copies(TcStage& st) const {
    constexpr int E = V / TC_ELEM_BYTES;  // elements per copy
    int n_ = n, p_ = p, b_ = base;
#pragma unroll
    for (int i = 0; i < TC_HALF_WORDS * 4 / V; ++i) {
      const bool ok = rowok && n_ < Nimg;
      tc_cp_async<V>(tc_smem_addr(&st[row][word0 + i * (V / 4)]), src + (ok ? b_ + p_ : 0), ok ? V : 0);
      p_ += E;
      if (p_ >= P) { p_ -= P; ++n_; b_ += RP; }  // E <= P: at most one wrap
    }
  }
  __device__ __forceinline__ void fetch(const TcGeo&, TcStage& st) {
    if (vec == 16) copies<16>(st);
    else if (vec == 8) copies<8>(st);
#if CONV_TC_ELEM == TC_TF32
    else copies<4>(st);  // (vec 4: a 4-byte element is always aligned)
#else
    else if (vec == 4) copies<4>(st);
    else {
      int n_ = n, p_ = p, b_ = base;
#pragma unroll
      for (int e = 0; e < TC_HALF; ++e) {
        const unsigned v = (rowok && n_ < Nimg) ? src[b_ + p_] : 0u;
        if (e & 1) staged[e >> 1] |= v << 16;
        else staged[e >> 1] = v;
        if (++p_ == P) { p_ = 0; ++n_; b_ += RP; }
      }
    }
#endif
    p += jp; n += jn; base += jn * RP;
    if (p >= P) { p -= P; ++n; base += RP; }
  }
  __device__ __forceinline__ void put(TcStage& st) const {
#if CONV_TC_ELEM != TC_TF32
    if (vec == 0) tc_store_words(&st[row][word0], staged);
#endif
  }
};

// acc += the warp's 32 x 32 share of one K-step held in stage st.
__device__ __forceinline__ void tc_mma_stage(const TcStage& st, TcAcc& acc) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = (warp & 1) * 32, wn = TC_BM + (warp >> 1) * 32;  // shared rows of the warp's A and B
#if CONV_TC_ELEM == TC_TF32
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int ks = 0; ks < TC_BK_WORDS; ks += 8) {
    unsigned a[TC_MI][4], b[TC_NI][2];
#pragma unroll
    for (int mi = 0; mi < TC_MI; ++mi) {
      const int r = wm + mi * 16 + g;
      a[mi][0] = tc_tf32(st[r][ks + t]);
      a[mi][1] = tc_tf32(st[r + 8][ks + t]);
      a[mi][2] = tc_tf32(st[r][ks + t + 4]);
      a[mi][3] = tc_tf32(st[r + 8][ks + t + 4]);
    }
#pragma unroll
    for (int ni = 0; ni < TC_NI; ++ni) {
      const int r = wn + ni * 8 + g;
      b[ni][0] = tc_tf32(st[r][ks + t]);
      b[ni][1] = tc_tf32(st[r][ks + t + 4]);
    }
#pragma unroll
    for (int mi = 0; mi < TC_MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < TC_NI; ++ni) tc_mma_tf32(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
  }
#else
  const int i8 = lane & 7, j = lane >> 3;  // this lane's row address: row i8 of matrix j
#pragma unroll
  for (int ks = 0; ks < TC_BK_WORDS; ks += 8) {  // 8 words = 16 K elements
    unsigned a[TC_MI][4], b[TC_NI][2];
#pragma unroll
    for (int mi = 0; mi < TC_MI; ++mi)  // matrices (m +0, k +0), (m +8, k +0), (m +0, k +8), (m +8, k +8)
      tc_ldmatrix_x4(a[mi], tc_smem_addr(&st[wm + mi * 16 + i8 + 8 * (j & 1)][ks + 4 * (j >> 1)]));
#pragma unroll
    for (int np = 0; np < TC_NI / 2; ++np) {  // matrices (n +0, k +0), (n +0, k +8), (n +8, k +0), (n +8, k +8)
      unsigned r[4];
      tc_ldmatrix_x4(r, tc_smem_addr(&st[wn + np * 16 + i8 + 8 * (j >> 1)][ks + 4 * (j & 1)]));
      b[2 * np][0] = r[0]; b[2 * np][1] = r[1];
      b[2 * np + 1][0] = r[2]; b[2 * np + 1][1] = r[3];
    }
#pragma unroll
    for (int mi = 0; mi < TC_MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < TC_NI; ++ni) tc_mma_16(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
  }
#endif
}


// acc = A[m0.., k_begin:k_end] @ B[k_begin:k_end, n0..] for the block's tile; ca and cb bound on the
// thread's first K index (k_begin + (tid / 64) * TC_HALF) and fetched in K order, each K-step once. Every
// thread must call it.
template <class CA, class CB>
__device__ __forceinline__ void tc_gemm(const TcGeo& g, CA& ca, CB& cb, int k_begin, int k_end, TcStage* st,
                                        TcAcc& acc) {
#pragma unroll
  for (int mi = 0; mi < TC_MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < TC_NI; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.f;
  const int steps = (k_end - k_begin + TC_BK - 1) / TC_BK;
  // Prologue: K-steps 0 .. STAGES-2 into stages 0 .. STAGES-2 (one commit group each, empty or not, so
  // that at step s exactly s + STAGES-1 groups were committed and wait_group STAGES-2 means "s landed").
#pragma unroll 1
  for (int s = 0; s < TC_STAGES - 1; ++s) {
    if (s < steps) {
      ca.fetch(g, st[s]);
      cb.fetch(g, st[s]);
      ca.put(st[s]);
      cb.put(st[s]);
    }
    tc_cp_async_commit();
  }
#pragma unroll 1
  for (int s = 0; s < steps; ++s) {
    tc_cp_async_wait<TC_STAGES - 2>();  // this thread's copies of step s have landed ...
    __syncthreads();  // ... and everyone's; everyone is done with step s-1, whose stage is refilled next
    const int next = s + TC_STAGES - 1;
    TcStage& nst = st[next % TC_STAGES];
    if (next < steps) {
      ca.fetch(g, nst);
      cb.fetch(g, nst);
    }
    tc_cp_async_commit();
    tc_mma_stage(st[s % TC_STAGES], acc);
    if (next < steps) {  // register-staged operands: the elements fetched before the math go to the free stage now
      ca.put(nst);
      cb.put(nst);
    }
  }
  tc_cp_async_wait<0>();  // nothing in flight when the block exits (only empty groups are left)
}
#endif  // TC_ARCH_OK

// The epilogue: element (m, n) of the tile goes to out[m * row_stride + col(n)] (col(n) < 0: outside),
// plus bias[m] when has_bias; to the float32 workspace ws instead of out when to_ws.
template <class Col>
__device__ __forceinline__ void tc_store(const TcAcc& acc, int m0, int n0, int M, int row_stride, const Col& col,
                                         const tc_elem* bias, int has_bias, tc_elem* out, float* ws, int to_ws) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int wm = m0 + (warp & 1) * 32, wn = n0 + (warp >> 1) * 32;
#pragma unroll
  for (int ni = 0; ni < TC_NI; ++ni) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int c = col(wn + ni * 8 + 2 * t + e);
      if (c < 0) continue;
#pragma unroll
      for (int mi = 0; mi < TC_MI; ++mi) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int m = wm + mi * 16 + g + 8 * h;
          if (m >= M) continue;
          float v = acc[mi][ni][2 * h + e];
          if (has_bias) v += tc_from_elem(bias[m]);
          if (to_ws) ws[m * row_stride + c] = v;
          else out[m * row_stride + c] = tc_to_elem(v);
        }
      }
    }
  }
}

struct TcColNCHW {  // column q = (n, p) of an (N, M, P) output: offset n*M*P + p (the row adds m*P)
  int count, P, MP;
  __device__ __forceinline__ int operator()(int q) const {
    if (q >= count) return -1;
    const int n = q / P;
    return n * MP + (q - n * P);
  }
};
struct TcColDense {  // column n of a row-major (M, count) output
  int count;
  __device__ __forceinline__ int operator()(int n) const { return n < count ? n : -1; }
};

__device__ __forceinline__ TcGeo tc_geo(int N, int C, int H, int W, int Co, int kH, int kW, int OH, int OW,
                                        int sh, int sw, int dh, int dw, int pt, int pl, int mode) {
  TcGeo g;
  g.N = N; g.C = C; g.H = H; g.W = W; g.Co = Co; g.kH = kH; g.kW = kW; g.OH = OH; g.OW = OW;
  g.sh = sh; g.sw = sw; g.dh = dh; g.dw = dw; g.pt = pt; g.pl = pl; g.mode = mode;
  return g;
}


// The block's tile and the thread's loader coordinates: shared row tid % 64 of each operand, the first K
// index k_begin + (tid / 64) * TC_HALF.
struct TcTile {
  int m0, n0, r, k0;
};
__device__ __forceinline__ TcTile tc_tile(int k_begin) {
  TcTile t;
  t.m0 = blockIdx.y * TC_BM; t.n0 = blockIdx.x * TC_BN; t.r = threadIdx.x % TC_BM;
  t.k0 = k_begin + (threadIdx.x / TC_BM) * TC_HALF;
  return t;
}
#if TC_ARCH_OK
template <class Op>
__device__ __forceinline__ void tc_bind_gather(const TcGeo& g, TcGather<Op>& c, const tc_elem* src, const TcTile& t) {
  c.src = src; c.row = TC_BM + t.r; c.word0 = (threadIdx.x / TC_BM) * TC_HALF_WORDS;
  c.op.bind(g, t.n0 + t.r, t.k0);
}
#endif

// -- forward -----------------------------------------------------------------------------------------------

// y = conv(x, w) + bias (has_bias 0: bias is a dummy array, not read). Grid (ceil(N*OH*OW / 64),
// ceil(C_out / 64)), block (128): block (bx, by) computes y for channels by*64.. and output positions
// q = n*OH*OW + oh*OW + ow in bx*64..; the warps and lanes as in the header. Reads x (N, C, H, W),
// w (C_out, C, kH, kW), bias (C_out,); writes y (N, C_out, OH, OW). A = w (TcRuns, copy width vec_w),
// B = the im2col of x (TcGather<TcFwdB>).
extern "C" __global__ void __launch_bounds__(TC_THREADS)
conv_tc_forward(const tc_elem* __restrict__ x, const tc_elem* __restrict__ w, const tc_elem* __restrict__ bias,
                int has_bias, tc_elem* __restrict__ y, int N, int C, int H, int W, int Co, int kH, int kW, int OH,
                int OW, int sh, int sw, int dh, int dw, int pt, int pl, int mode, int vec_w) {
#if TC_ARCH_OK
  __shared__ __align__(16) TcStage st[TC_STAGES];
  const TcGeo g = tc_geo(N, C, H, W, Co, kH, kW, OH, OW, sh, sw, dh, dw, pt, pl, mode);
  const int K = C * kH * kW;
  const TcTile t = tc_tile(0);
  TcRuns ca;
  ca.bind(w, t.r, t.m0 + t.r, Co, K, 1, t.k0, vec_w);
  TcGather<TcFwdB> cb;
  tc_bind_gather(g, cb, x, t);
  TcAcc acc;
  tc_gemm(g, ca, cb, 0, K, st, acc);
  TcColNCHW col;
  col.count = N * OH * OW; col.P = OH * OW; col.MP = Co * OH * OW;
  tc_store(acc, t.m0, t.n0, Co, OH * OW, col, bias, has_bias, y, (float*)0, 0);
#else
  __trap();
#endif
}

// -- backward-data -------------------------------------------------------------------------------------

// The gradient over a (HD, WD) grid of padded input positions starting at padded (oh0, ow0) (see the top
// of the file): out[n, c, hh, ww] = sum over (co, r, s) of w[co, c, r, s] * gy[n, co, oh, ow] with
// oh*sh + r*dh = hh + oh0 (and ow alike). Zeros padding: (oh0, ow0) = (pt, pl), (HD, WD) = (H, W), the
// result is gx itself (to_ws 0, into gx). Other modes: the whole padded grid into the float32 workspace ws
// (to_ws 1; gx is then a dummy), which conv_tc_fold adds onto gx. Grid (ceil(N*HD*WD / 64), ceil(C / 64)),
// block (128). Reads gy (N, C_out, OH, OW) and wt, the weight transposed to (C, C_out, kH, kW) by the host
// (so that A's rows, (co, r, s) for one c, are contiguous: TcRuns, copy width vec_w); B = gy gathered per
// padded position (TcGather<TcDgradB>).
extern "C" __global__ void __launch_bounds__(TC_THREADS)
conv_tc_backward_data(const tc_elem* __restrict__ gy, const tc_elem* __restrict__ wt, tc_elem* __restrict__ gx,
                      float* __restrict__ ws, int to_ws, int N, int C, int H, int W, int Co, int kH, int kW, int OH,
                      int OW, int sh, int sw, int dh, int dw, int oh0, int ow0, int HD, int WD, int vec_w) {
#if TC_ARCH_OK
  __shared__ __align__(16) TcStage st[TC_STAGES];
  const TcGeo g = tc_geo(N, C, H, W, Co, kH, kW, OH, OW, sh, sw, dh, dw, 0, 0, CONV_PAD_ZEROS);
  const int K = Co * kH * kW;
  const TcTile t = tc_tile(0);
  TcRuns ca;
  ca.bind(wt, t.r, t.m0 + t.r, C, K, 1, t.k0, vec_w);
  TcGather<TcDgradB> cb;
  cb.op.HD = HD; cb.op.WD = WD; cb.op.oh0 = oh0; cb.op.ow0 = ow0;
  tc_bind_gather(g, cb, gy, t);
  TcAcc acc;
  tc_gemm(g, ca, cb, 0, K, st, acc);
  TcColNCHW col;
  col.count = N * HD * WD; col.P = HD * WD; col.MP = C * HD * WD;
  tc_store(acc, t.m0, t.n0, C, HD * WD, col, (const tc_elem*)0, 0, gx, ws, to_ws);
#else
  __trap();
#endif
}

// gx[n, c, h, w] = sum of ws[n, c, hp, wp] over the padded positions (hp, wp) of the (Hp, Wp) grid whose
// source is (h, w) (tc_pad_source): the interior one, then the top/left border rows/columns, then the
// bottom/right ones, in that fixed order. Grid (ceil(N*C*H*W / 256)), block (256): one thread per element
// of gx. Reads ws (N*C, Hp, Wp) float32; writes gx (N*C, H, W).
extern "C" __global__ void __launch_bounds__(256)
conv_tc_fold(const float* __restrict__ ws, tc_elem* __restrict__ gx, int NC, int H, int W, int Hp, int Wp, int pt,
             int pl, int mode) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= NC * H * W) return;
  const int nc = i / (H * W), hw = i - nc * H * W, h = hw / W, wc = hw - h * W;
  const int pb = Hp - H - pt, pr = Wp - W - pl;
  const float* src = ws + nc * Hp * Wp;
  float v = 0.f;
  // rows: a = 0 the interior (hp = h + pt), then a = 1 .. pt + pb the border rows in order
  for (int a = 0; a <= pt + pb; ++a) {
    const int hp = a == 0 ? h + pt : (a <= pt ? a - 1 : H + a - 1);
    if (a > 0 && tc_pad_source(hp - pt, H, mode) != h) continue;
    for (int b = 0; b <= pl + pr; ++b) {
      const int wp = b == 0 ? wc + pl : (b <= pl ? b - 1 : W + b - 1);
      if (b > 0 && tc_pad_source(wp - pl, W, mode) != wc) continue;
      v += src[hp * Wp + wp];
    }
  }
  gx[i] = tc_to_elem(v);
}

// -- backward-filter -----------------------------------------------------------------------------------

// -- backward-filter -----------------------------------------------------------------------------------

// gw[co, k] = sum over q in split z (q = z*k_per_split .. min(N*OH*OW, (z+1)*k_per_split)) of
// gy[n, co, oh, ow] * Col[k, q], k = (c, r, s). One split (gridDim.z == 1, to_ws 0): into gw (C_out, C, kH,
// kW). Several (to_ws 1): into ws (splits, C_out, C*kH*kW) float32 for conv_tc_splitk_reduce; gw is then a
// dummy. Grid (ceil(C*kH*kW / 64), ceil(C_out / 64), splits), block (128); k_per_split a multiple of the
// K-step (16 for TF32, 32 for 16-bit). Reads x (N, C, H, W), gy (N, C_out, OH, OW). A = gy (TcRuns, copy
// width vec_gy). B = the im2col of x with tile rows k (TcGather<TcWgradB>); conv_tc_backward_filter_pointwise,
// for 1x1 kernels of stride 1 without padding (x's (n, c) planes are then the runs of Col: TcRuns with
// copy width vec_x), the same GEMM with a contiguous B.
template <class CB>
__device__ __forceinline__ void tc_backward_filter(const tc_elem* __restrict__ gy, CB& cb, tc_elem* __restrict__ gw,
                                                   float* __restrict__ ws, int to_ws, const TcGeo& g,
                                                   int k_per_split, int vec_gy, const TcTile& t, TcStage* st) {
#if TC_ARCH_OK
  const int Kf = g.C * g.kH * g.kW, Q = g.N * g.OH * g.OW;
  const int k_begin = blockIdx.z * k_per_split, k_end = min(Q, k_begin + k_per_split);
  TcRuns ca;
  ca.bind(gy, t.r, t.m0 + t.r, g.Co, g.OH * g.OW, g.N, t.k0, vec_gy);
  TcAcc acc;
  tc_gemm(g, ca, cb, k_begin, k_end, st, acc);
  TcColDense col;
  col.count = Kf;
  tc_store(acc, t.m0, t.n0, g.Co, Kf, col, (const tc_elem*)0, 0, gw, ws + blockIdx.z * g.Co * Kf, to_ws);
#endif
}

extern "C" __global__ void __launch_bounds__(TC_THREADS)
conv_tc_backward_filter(const tc_elem* __restrict__ x, const tc_elem* __restrict__ gy, tc_elem* __restrict__ gw,
                        float* __restrict__ ws, int to_ws, int N, int C, int H, int W, int Co, int kH, int kW,
                        int OH, int OW, int sh, int sw, int dh, int dw, int pt, int pl, int mode, int k_per_split,
                        int vec_gy) {
#if TC_ARCH_OK
  __shared__ __align__(16) TcStage st[TC_STAGES];
  const TcGeo g = tc_geo(N, C, H, W, Co, kH, kW, OH, OW, sh, sw, dh, dw, pt, pl, mode);
  const TcTile t = tc_tile(blockIdx.z * k_per_split);
  TcGather<TcWgradB> cb;
  tc_bind_gather(g, cb, x, t);
  tc_backward_filter(gy, cb, gw, ws, to_ws, g, k_per_split, vec_gy, t, st);
#else
  __trap();
#endif
}

// The pointwise case (kH = kW = 1, sh = sw = 1, no padding: OH = H, OW = W): conv_tc_backward_filter's
// arguments less the geometry fixed here, plus vec_x.
extern "C" __global__ void __launch_bounds__(TC_THREADS)
conv_tc_backward_filter_pointwise(const tc_elem* __restrict__ x, const tc_elem* __restrict__ gy,
                                  tc_elem* __restrict__ gw, float* __restrict__ ws, int to_ws, int N, int C, int H,
                                  int W, int Co, int k_per_split, int vec_gy, int vec_x) {
#if TC_ARCH_OK
  __shared__ __align__(16) TcStage st[TC_STAGES];
  const TcGeo g = tc_geo(N, C, H, W, Co, 1, 1, H, W, 1, 1, 1, 1, 0, 0, CONV_PAD_ZEROS);
  const TcTile t = tc_tile(blockIdx.z * k_per_split);
  TcRuns cb;
  cb.bind(x, TC_BM + t.r, t.n0 + t.r, C, H * W, N, t.k0, vec_x);
  tc_backward_filter(gy, cb, gw, ws, to_ws, g, k_per_split, vec_gy, t, st);
#else
  __trap();
#endif
}

// out[i] = sum_z ws[z, i], z = 0, 1, ... in order (deterministic), rounded once to the element type.
// Grid (ceil(count / 256)), block (256); reads ws (splits, count) float32, writes out (count,).
extern "C" __global__ void __launch_bounds__(256)
conv_tc_splitk_reduce(const float* __restrict__ ws, tc_elem* __restrict__ out, int splits, int count) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) {
    float s = ws[i];
    for (int z = 1; z < splits; ++z) s += ws[z * count + i];
    out[i] = tc_to_elem(s);
  }
}
