// conv2d (and conv1d, which runs as conv2d with H = 1): forward, backward-data, backward-filter, bias grad.
//
// Layouts (all C-contiguous): x (N, C, H, W), w (C_out, C, kH, kW), bias (C_out,), y (N, C_out, OH, OW).
// Semantics as gpucnn/functions/conv.py (PyTorch cross-correlation):
//   y[n, o, oh, ow] = b[o] + sum_{c, r, s} w[o, c, r, s] * xpad[n, c, oh*sh + r*dh, ow*sw + s*dw]
// where xpad is x padded by (pt, pb) rows and (pl, pr) columns in one of four modes. xpad is NEVER built:
// a padded coordinate is mapped to its source coordinate in x (or to "zero") by conv_pad_source, and the
// backward-data gather walks the inverse map (conv_pad_preimage).
//
// The three passes are implicit GEMMs sharing one main loop (conv_gemm_mainloop):
//   forward          Y[co, q]  = sum_k   Wt[co, k]   * Col[k, q]     M = C_out, N = N*OH*OW, K = C*kH*kW
//   backward-filter  GW[co, k] = sum_q   GY[co, q]   * Col[k, q]     M = C_out, N = C*kH*kW, K = N*OH*OW
//   backward-data    GX[c, p]  = sum_j   Wd[c, j]    * GCol[j, p]    M = C,     N = N*H*W,   K = C_out*kH*kW
// with q = (n, oh, ow), k = (c, r, s), p = (n, h, w), j = (co, r, s). Col (im2col) and GCol (the col2im
// gather) are never stored: each B-tile element is gathered from x or gy while the tile is loaded.
//
// Thread mapping of the GEMM kernels: a block of (CONV_BN/CONV_TN, CONV_BM/CONV_TM) threads computes a
// CONV_BM x CONV_BN tile of the output matrix. Per K-step it stages a CONV_BK-deep slice of A (CONV_BM x
// CONV_BK) and B (CONV_BK x CONV_BN) in shared memory, double-buffered: the next slice is fetched into
// registers (backward-data: gathered straight into the other buffer) before the current one is multiplied,
// so one __syncthreads() per K-step suffices. Thread (tx, ty) owns a
// CONV_TM x CONV_TN register micro-tile: rows ty + i*(CONV_BM/CONV_TM), columns tx + j*(CONV_BN/CONV_TN)
// (interleaved, so a warp's shared-memory reads of B hit consecutive words and its global stores of
// neighbouring columns are coalesced).
//
// Groups (G = gridDim.z for forward and backward-data, gridDim.z = G * splits for backward-filter): the
// kernel arguments C and Co are the channels PER GROUP, the last argument G the number of groups; group g
// is the same GEMM on x's channels g*C.., w's rows g*Co.. and y's channels g*Co.. (pointer offsets; the
// batch strides are those of the whole G*C / G*Co channels). G = 1 is the ordinary convolution.
//
// 32-bit indexing: the host (Conv2d._check_int32) makes sure every array size and GEMM extent, plus a tile
// of headroom, fits in int32, so no index expression here can overflow.
//
// Determinism: every output element is written by exactly one thread, with a fixed summation order; no
// atomics. Backward-filter splits K (= N*OH*OW, often large) over gridDim.z into a workspace that
// conv2d_splitk_reduce sums in split order.
#include "common.cuh"
#include "conv_pad.cuh"

// -- tuning knobs (the host mirrors these defaults in gpucnn/functions/conv.py) ----------------------------
#ifndef CONV_BM
#define CONV_BM 64  // block tile rows (M)
#endif
#ifndef CONV_BN
#define CONV_BN 64  // block tile columns (N)
#endif
#ifndef CONV_BK
#define CONV_BK 16  // K-step: depth of the shared-memory slices
#endif
#ifndef CONV_TM
#define CONV_TM 8  // micro-tile rows per thread
#endif
#ifndef CONV_TN
#define CONV_TN 4  // micro-tile columns per thread
#endif
#ifndef CONV_SMEM_PAD
#define CONV_SMEM_PAD 1  // extra words per shared-memory row (spreads the transposed A stores over banks)
#endif
#ifndef CONV_REDUCE_THREADS
#define CONV_REDUCE_THREADS 256  // conv2d_splitk_reduce block size; also the bias-grad kernel's maximum
#endif

#define CONV_THREADS ((CONV_BM / CONV_TM) * (CONV_BN / CONV_TN))
#define CONV_A_MSTEP (CONV_THREADS / CONV_BK)                // rows between one thread's A-tile loads
#define CONV_A_LOADS (CONV_BM * CONV_BK / CONV_THREADS)      // A-tile elements per thread per K-step
#define CONV_B_KSTEP (CONV_THREADS / CONV_BN)                // forward/dgrad B: k rows between loads
#define CONV_B_LOADS (CONV_BN * CONV_BK / CONV_THREADS)      // B-tile elements per thread per K-step
#define CONV_BW_NSTEP (CONV_THREADS / CONV_BK)               // wgrad B: columns between loads

static_assert(CONV_BM % CONV_TM == 0 && CONV_BN % CONV_TN == 0, "micro-tile must divide the block tile");
static_assert(CONV_THREADS <= 1024, "too many threads per block");
static_assert(CONV_THREADS % CONV_BK == 0 && CONV_BM % CONV_A_MSTEP == 0, "A-tile load mapping");
static_assert(CONV_THREADS % CONV_BN == 0 && CONV_BK % CONV_B_KSTEP == 0, "B-tile load mapping (fwd/dgrad)");
static_assert(CONV_BN % CONV_BW_NSTEP == 0, "B-tile load mapping (wgrad)");
static_assert(CONV_REDUCE_THREADS % 32 == 0 && CONV_REDUCE_THREADS <= 1024, "reduce block size");

typedef T ConvTileA[CONV_BK][CONV_BM + CONV_SMEM_PAD];  // A slice, transposed: [k][m]
typedef T ConvTileB[CONV_BK][CONV_BN + CONV_SMEM_PAD];  // B slice: [k][n]

// -- index helpers -----------------------------------------------------------------------------------------

// conv_pad_source, conv_pad_preimage, conv_out_range: kernels_cuda/conv_pad.cuh (shared with depthwise.cu)

// A reduction index k = (c, r, s) of the forward GEMM in mixed radix (C, kH, kW), advanced by a fixed stride
// with additions and two conditional carries instead of the two divisions (~40 instructions each) that
// decoding k afresh costs. A stride d is decomposed once (conv_kpos_of); every component of it is below
// its radix, so one carry per digit suffices.
struct ConvKPos {
  int c, r, s;
};

__device__ __forceinline__ ConvKPos conv_kpos_of(int k, int kH, int kW) {
  ConvKPos p;
  p.c = k / (kH * kW);
  const int rs = k - p.c * kH * kW;
  p.r = rs / kW;
  p.s = rs - p.r * kW;
  return p;
}

__device__ __forceinline__ void conv_kpos_step(ConvKPos& p, const ConvKPos& d, int kH, int kW) {
  p.s += d.s;
  int carry = p.s >= kW;
  p.s -= carry ? kW : 0;
  p.r += d.r + carry;
  carry = p.r >= kH;
  p.r -= carry ? kH : 0;
  p.c += d.c + carry;
}

// -- the shared GEMM main loop -----------------------------------------------------------------------------

// acc (this thread's micro-tile) += A[:, k_begin:k_end] @ B[k_begin:k_end, :] over the block's tile.
// The loader fetches slice k0 .. k0+CONV_BK-1 (zero outside the problem) with ld.load(k0, As, Bs) and
// ld.store(As, Bs): load runs before the math on the current buffer and may only stage into registers or
// write the given (next) buffers; store runs after the math and writes what load staged. Every thread of
// the block must call it.
template <class Loader>
__device__ __forceinline__ void conv_gemm_mainloop(Loader& ld, int k_begin, int k_end, ConvTileA* As,
                                                   ConvTileB* Bs, T (&acc)[CONV_TM][CONV_TN]) {
  const int tx = threadIdx.x, ty = threadIdx.y;
#pragma unroll
  for (int i = 0; i < CONV_TM; ++i)
#pragma unroll
    for (int j = 0; j < CONV_TN; ++j) acc[i][j] = T(0);

  ld.load(k_begin, As[0], Bs[0]);
  ld.store(As[0], Bs[0]);
  __syncthreads();
  int buf = 0;
  for (int k0 = k_begin; k0 < k_end; k0 += CONV_BK) {
    const bool next = k0 + CONV_BK < k_end;
    if (next) ld.load(k0 + CONV_BK, As[buf ^ 1], Bs[buf ^ 1]);  // issue the next slice's loads first
#pragma unroll
    for (int k = 0; k < CONV_BK; ++k) {
      T a[CONV_TM], b[CONV_TN];
#pragma unroll
      for (int i = 0; i < CONV_TM; ++i) a[i] = As[buf][k][ty + i * (CONV_BM / CONV_TM)];
#pragma unroll
      for (int j = 0; j < CONV_TN; ++j) b[j] = Bs[buf][k][tx + j * (CONV_BN / CONV_TN)];
#pragma unroll
      for (int i = 0; i < CONV_TM; ++i)
#pragma unroll
        for (int j = 0; j < CONV_TN; ++j) acc[i][j] += a[i] * b[j];
    }
    // The other buffer was last read before the previous barrier: load and store may write it.
    if (next) ld.store(As[buf ^ 1], Bs[buf ^ 1]);
    __syncthreads();
    buf ^= 1;
  }
}

__device__ __forceinline__ int conv_tid() { return threadIdx.y * (CONV_BN / CONV_TN) + threadIdx.x; }

// -- forward -----------------------------------------------------------------------------------------------

// A = w viewed as (C_out, K) row-major; B = im2col of x, gathered: B[k, q] = xpad[n, c, oh*sh + r*dh, ...].
// A loads: this thread's k = tid % BK, rows tid / BK + j*A_MSTEP (a warp reads 16 consecutive w elements).
// B loads: this thread's column q = tid % BN (fixed for the whole K loop: (n, oh, ow) decoded once), rows
// kk = k0 + tid / BN + j*B_KSTEP (a warp reads consecutive ow: stride-sw addresses in x). Their (c, r, s)
// are stepped, not divided out: b_pos holds the first row's for the K-step about to be loaded (the main
// loop loads K-steps in order), advanced by B_KSTEP between rows and by BK between K-steps.
struct ConvFwdLoader {
  const T* __restrict__ x;
  const T* __restrict__ w;
  int C, H, W, kH, kW, dh, dw, mode, M, K;
  int a_k, a_ml, a_m0;             // A: k offset in the slice, first row in the tile / globally
  int b_k, b_n;                    // B: first k row in the slice, column in the tile
  bool b_ok;                       // B column inside the problem
  int b_xbase, b_i0, b_j0;         // x offset of image n; oh*sh - pt, ow*sw - pl
  ConvKPos b_pos, b_row_step, b_tile_step;
  T ra[CONV_A_LOADS], rb[CONV_B_LOADS];

  // (k0: the first K-step's start, as the main loop will load it)
  __device__ __forceinline__ void begin(int k0) {
    b_pos = conv_kpos_of(k0 + b_k, kH, kW);
    b_row_step = conv_kpos_of(CONV_B_KSTEP, kH, kW);
    b_tile_step = conv_kpos_of(CONV_BK, kH, kW);
  }

  __device__ __forceinline__ void load(int k0, ConvTileA&, ConvTileB&) {
    const int k = k0 + a_k;
#pragma unroll
    for (int j = 0; j < CONV_A_LOADS; ++j) {
      const int m = a_m0 + j * CONV_A_MSTEP;
      ra[j] = (m < M && k < K) ? w[m * K + k] : T(0);
    }
    ConvKPos p = b_pos;
#pragma unroll
    for (int j = 0; j < CONV_B_LOADS; ++j) {
      const int kk = k0 + b_k + j * CONV_B_KSTEP;
      T v = T(0);
      if (b_ok && kk < K) {
        const int hi = conv_pad_source(b_i0 + p.r * dh, H, mode);
        const int wi = conv_pad_source(b_j0 + p.s * dw, W, mode);
        if (hi >= 0 && wi >= 0) v = x[b_xbase + (p.c * H + hi) * W + wi];
      }
      rb[j] = v;
      if (j + 1 < CONV_B_LOADS) conv_kpos_step(p, b_row_step, kH, kW);
    }
    conv_kpos_step(b_pos, b_tile_step, kH, kW);
  }
  __device__ __forceinline__ void store(ConvTileA& As, ConvTileB& Bs) const {
#pragma unroll
    for (int j = 0; j < CONV_A_LOADS; ++j) As[a_k][a_ml + j * CONV_A_MSTEP] = ra[j];
#pragma unroll
    for (int j = 0; j < CONV_B_LOADS; ++j) Bs[b_k + j * CONV_B_KSTEP][b_n] = rb[j];
  }
};

// y = conv(x, w) + bias (has_bias == 0: no bias, and the pointer is not read: pass any array; a null
// pointer argument is not portable, CuPy < 14 passes None as garbage). Grid (ceil(N*OH*OW / BN), ceil(C_out / BM), G), block
// (BN/TN, BM/TM). Block (bx, by) computes y for output channels by*BM .. +BM and flattened output positions
// q = n*OH*OW + oh*OW + ow in bx*BN .. +BN; each thread a TM x TN micro-tile (see the top of the file).
// Reads x (N, C, H, W), w (C_out, C, kH, kW), bias (C_out,); writes y (N, C_out, OH, OW).
// __launch_bounds__(CONV_THREADS, 1): as for backward-data, lets ptxas use the registers the tile needs (it
// capped the 32x64/4x4 tile at 64 on sm_90 and spilled 20 bytes once the loader stepped (c, r, s)).
extern "C" __global__ void __launch_bounds__(CONV_THREADS, 1)
conv2d_forward(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias, int has_bias,
               T* __restrict__ y, int N, int C, int H, int W, int Co, int kH, int kW, int OH, int OW, int sh, int sw, int dh, int dw,
               int pt, int pl, int mode, int G) {
  __shared__ ConvTileA As[2];
  __shared__ ConvTileB Bs[2];
  const int tid = conv_tid();
  const int row0 = blockIdx.y * CONV_BM, col0 = blockIdx.x * CONV_BN;
  const int OHW = OH * OW, Q = N * OHW, g = blockIdx.z;
  x += g * C * H * W;  // this group's channels (batch stride G*C*H*W below)
  w += g * Co * C * kH * kW;
  bias += has_bias ? g * Co : 0;

  ConvFwdLoader ld;
  ld.x = x; ld.w = w;
  ld.C = C; ld.H = H; ld.W = W; ld.kH = kH; ld.kW = kW; ld.dh = dh; ld.dw = dw; ld.mode = mode;
  ld.M = Co; ld.K = C * kH * kW;
  ld.a_k = tid % CONV_BK; ld.a_ml = tid / CONV_BK; ld.a_m0 = row0 + ld.a_ml;
  ld.b_k = tid / CONV_BN; ld.b_n = tid % CONV_BN;
  {
    const int q = col0 + ld.b_n;
    ld.b_ok = q < Q;
    const int n = ld.b_ok ? q / OHW : 0, p = q - n * OHW, oh = p / OW, ow = p - oh * OW;
    ld.b_xbase = n * G * C * H * W;
    ld.b_i0 = oh * sh - pt;
    ld.b_j0 = ow * sw - pl;
  }

  T acc[CONV_TM][CONV_TN];
  ld.begin(0);
  conv_gemm_mainloop(ld, 0, ld.K, As, Bs, acc);

  // Epilogue: add the bias, scatter the columns back to NCHW.
#pragma unroll
  for (int j = 0; j < CONV_TN; ++j) {
    const int q = col0 + threadIdx.x + j * (CONV_BN / CONV_TN);
    if (q >= Q) continue;
    const int n = q / OHW, p = q - n * OHW;
#pragma unroll
    for (int i = 0; i < CONV_TM; ++i) {
      const int co = row0 + threadIdx.y + i * (CONV_BM / CONV_TM);
      if (co < Co) y[(n * G * Co + g * Co + co) * OHW + p] = has_bias ? acc[i][j] + bias[co] : acc[i][j];
    }
  }
}

// -- backward-filter ---------------------------------------------------------------------------------------

// A = gy viewed as (C_out, N*OH*OW): A[co, q] = gy[n, co, oh, ow]; B[q, k] = im2col of x (as forward).
// Both loads use this thread's q = k0 + tid % BK, decoded once per K-step (a warp reads 16 consecutive
// positions of gy / x). A rows: tid / BK + j*A_MSTEP. B columns k = tid / BK + j*BW_NSTEP, fixed for the
// whole K loop, so their (c*H*W, r*dh, s*dw) are decoded once, before it.
struct ConvWgradLoader {
  const T* __restrict__ x;
  const T* __restrict__ gy;
  int Co, G, H, W, OW, OHW, CHW, sh, sw, pt, pl, mode, k_end;
  int a_k, a_ml, a_m0, b_n0;
  int b_off[CONV_B_LOADS], b_rdh[CONV_B_LOADS], b_sdw[CONV_B_LOADS];  // b_off < 0: column outside
  T ra[CONV_A_LOADS], rb[CONV_B_LOADS];

  __device__ __forceinline__ void load(int k0, ConvTileA&, ConvTileB&) {
    const int q = k0 + a_k;
    const bool ok = q < k_end;
    const int n = ok ? q / OHW : 0, p = q - n * OHW, oh = p / OW, ow = p - oh * OW;
    const int gbase = n * G * Co * OHW + p;
#pragma unroll
    for (int j = 0; j < CONV_A_LOADS; ++j) {
      const int co = a_m0 + j * CONV_A_MSTEP;
      ra[j] = (ok && co < Co) ? gy[gbase + co * OHW] : T(0);
    }
    const int xbase = n * CHW, i0 = oh * sh - pt, j0 = ow * sw - pl;
#pragma unroll
    for (int j = 0; j < CONV_B_LOADS; ++j) {
      T v = T(0);
      if (ok && b_off[j] >= 0) {
        const int hi = conv_pad_source(i0 + b_rdh[j], H, mode);
        const int wi = conv_pad_source(j0 + b_sdw[j], W, mode);
        if (hi >= 0 && wi >= 0) v = x[xbase + b_off[j] + hi * W + wi];
      }
      rb[j] = v;
    }
  }
  __device__ __forceinline__ void store(ConvTileA& As, ConvTileB& Bs) const {
#pragma unroll
    for (int j = 0; j < CONV_A_LOADS; ++j) As[a_k][a_ml + j * CONV_A_MSTEP] = ra[j];
#pragma unroll
    for (int j = 0; j < CONV_B_LOADS; ++j) Bs[a_k][b_n0 + j * CONV_BW_NSTEP] = rb[j];
  }
};

// Weight gradient, split over K: out[z, co, k] = sum over q in [z*k_per_split, min(Q, (z+1)*k_per_split))
// of gy[q; co] * col[k, q], with k = (c, r, s) and q = (n, oh, ow). out is gw itself (C_out, C, kH, kW)
// when there is one split, else a (splits, G*C_out, C*kH*kW) workspace for conv2d_splitk_reduce.
// Grid (ceil(C*kH*kW / BN), ceil(C_out / BM), G * splits), block (BN/TN, BM/TM); k_per_split is a multiple
// of BK. Block (bx, by, z) computes the BM x BN tile (channels by*BM.., filter taps bx*BN..) of split z;
// each thread a TM x TN micro-tile. Reads x (N, C, H, W), gy (N, C_out, OH, OW).
// __launch_bounds__(CONV_THREADS, 1) as the other GEMMs: without the minimum, ptxas held the 128-thread
// tiles to 64 registers and spilled (32x64x16/4x4 float: 12 B with CUDA 13's ptxas, 8 B with NVRTC 12.9).
extern "C" __global__ void __launch_bounds__(CONV_THREADS, 1)
conv2d_backward_filter(const T* __restrict__ x, const T* __restrict__ gy, T* __restrict__ out,
                       int N, int C, int H, int W, int Co, int kH, int kW, int OH, int OW, int sh, int sw,
                       int dh, int dw, int pt, int pl, int mode, int k_per_split, int G) {
  __shared__ ConvTileA As[2];
  __shared__ ConvTileB Bs[2];
  const int tid = conv_tid();
  const int row0 = blockIdx.y * CONV_BM, col0 = blockIdx.x * CONV_BN;
  const int kHW = kH * kW, Kf = C * kHW, Q = N * OH * OW;
  const int splits = gridDim.z / G, g = blockIdx.z / splits, split = blockIdx.z - g * splits;
  const int k_begin = split * k_per_split;
  const int k_end = min(Q, k_begin + k_per_split);
  x += g * C * H * W;
  gy += g * Co * OH * OW;

  ConvWgradLoader ld;
  ld.x = x; ld.gy = gy;
  ld.Co = Co; ld.G = G; ld.H = H; ld.W = W; ld.OW = OW; ld.OHW = OH * OW; ld.CHW = G * C * H * W;
  ld.sh = sh; ld.sw = sw; ld.pt = pt; ld.pl = pl; ld.mode = mode; ld.k_end = k_end;
  ld.a_k = tid % CONV_BK; ld.a_ml = tid / CONV_BK; ld.a_m0 = row0 + ld.a_ml; ld.b_n0 = tid / CONV_BK;
#pragma unroll
  for (int j = 0; j < CONV_B_LOADS; ++j) {
    const int k = col0 + ld.b_n0 + j * CONV_BW_NSTEP;
    const int c = k / kHW, rs = k - c * kHW, r = rs / kW, s = rs - r * kW;
    ld.b_off[j] = k < Kf ? c * H * W : -1;
    ld.b_rdh[j] = r * dh;
    ld.b_sdw[j] = s * dw;
  }

  T acc[CONV_TM][CONV_TN];
  conv_gemm_mainloop(ld, k_begin, k_end, As, Bs, acc);

  T* dst = out + (split * G + g) * Co * Kf;  // gw (G*Co, C, kH, kW), or split's slice of the workspace
#pragma unroll
  for (int i = 0; i < CONV_TM; ++i) {
    const int co = row0 + threadIdx.y + i * (CONV_BM / CONV_TM);
#pragma unroll
    for (int j = 0; j < CONV_TN; ++j) {
      const int k = col0 + threadIdx.x + j * (CONV_BN / CONV_TN);
      if (co < Co && k < Kf) dst[co * Kf + k] = acc[i][j];
    }
  }
}

// out[i] = sum_z ws[z, i] (z = 0, 1, ... in order: deterministic). Grid (ceil(count / blockDim.x)), block
// (CONV_REDUCE_THREADS); one thread per output element, reads ws (splits, count), writes out (count,).
extern "C" __global__ void __launch_bounds__(CONV_REDUCE_THREADS)
conv2d_splitk_reduce(const T* __restrict__ ws, T* __restrict__ out, int splits, int count) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) {
    T s = ws[i];
    for (int z = 1; z < splits; ++z) s += ws[z * count + i];
    out[i] = s;
  }
}

// gb[co] = sum over n, oh, ow of gy[n, co, oh, ow], each channel split over gridDim.y blocks. Grid
// (C_out, S), block (B) with B a multiple of 32, at most CONV_REDUCE_THREADS (the host picks B from the
// positions per block and S so that C_out * S blocks fill the GPU). Block (co, s) reduces the positions
// q = s*chunk .. min((s+1)*chunk, N*OH*OW) - 1 of channel co (q = n*OH*OW + p): thread t sums q0 + t,
// q0 + t + B, ..., then a fixed butterfly over each warp and a sum over the warps in order; it writes
// part[s * C_out + co]. With S > 1 the host adds the S partial sums of each channel in split order
// (conv2d_splitk_reduce): deterministic, a function of the shapes. Reads gy (N, C_out, OH, OW); writes
// part (S, C_out) (= gb when S == 1).
extern "C" __global__ void __launch_bounds__(CONV_REDUCE_THREADS)
conv2d_backward_bias(const T* __restrict__ gy, T* __restrict__ part, int N, int Co, int OHW, int chunk) {
  __shared__ T warp_sums[CONV_REDUCE_THREADS / 32];
  const int co = blockIdx.x, tid = threadIdx.x, Q = N * OHW;
  const int q0 = blockIdx.y * chunk, q1 = min(q0 + chunk, Q);
  T s = T(0);
  for (int q = q0 + tid; q < q1; q += blockDim.x) {
    const int n = q / OHW, p = q - n * OHW;
    s += gy[(n * Co + co) * OHW + p];
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_xor_sync(0xffffffffu, s, offset);
  if ((tid & 31) == 0) warp_sums[tid >> 5] = s;
  __syncthreads();
  if (tid == 0) {
    T total = warp_sums[0];
    for (int k = 1; k < (int)(blockDim.x >> 5); ++k) total += warp_sums[k];
    part[blockIdx.y * Co + co] = total;
  }
}

// -- backward-data -----------------------------------------------------------------------------------------

// A = w viewed as (C, C_out*kH*kW): A[c, j] = w[co, c, r, s] with j = (co, r, s). B = the col2im gather:
//   B[j, p] = sum of gy[n, co, oh, ow] over the padded positions (hp, wp) whose source is (h, w)
//             (conv_pad_preimage), with oh = (hp - r*dh) / sh (exact division, 0 <= oh < OH) and ow alike.
// A loads: this thread's j = tid % BK (decoded once per K-step), rows c = tid / BK + i*A_MSTEP.
// B loads: this thread's column p = tid % BN, fixed for the K loop: (n, h, w) and the preimages of h and w
// are computed once; rows j = tid / BN + i*B_KSTEP. For each preimage entry the valid oh form a range
// (conv_out_range), so no padded position is tested one by one.
// With zeros padding that is one position (or none); replicate borders can send several to an edge pixel.
// Both slices go straight to the next shared-memory buffer (no register staging as in the other passes):
// the B gather is integer work more than load latency, and staging cost registers (spills in double).
struct ConvDgradLoader {
  const T* __restrict__ gy;
  const T* __restrict__ w;
  int C, kH, kW, kHW, CkHW, OH, OW, OHW, sh, sw, dh, dw, K;  // C, K: per group
  int segs;                        // preimage entries in use: 3 for reflect/circular, else 1
  int a_k, a_ml, a_m0, b_k, b_n;
  int b_gbase;                     // gy offset of image n
  ConvPreimage ph, pw;             // padded rows / columns that map onto this thread's (h, w)
  ConvKPos b_pos, b_row_step, b_tile_step;  // (co, r, s) of the B rows, stepped as in ConvFwdLoader

  __device__ __forceinline__ void begin(int k0) {
    b_pos = conv_kpos_of(k0 + b_k, kH, kW);
    b_row_step = conv_kpos_of(CONV_B_KSTEP, kH, kW);
    b_tile_step = conv_kpos_of(CONV_BK, kH, kW);
  }

  // The sum of gy over the outputs (oh, ow) of channel co whose tap (r, s) reads a padded position
  // that maps onto this thread's (h, w): rows from the 3 row preimage entries x columns from the 3 column
  // entries (with zeros padding: at most one output).
  __device__ __forceinline__ T gather(const ConvKPos& j) const {
    const int rdh = j.r * dh, sdw = j.s * dw;
    const T* g = gy + b_gbase + j.c * OHW;
    T v = T(0);
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      if (a >= segs) break;  // zeros/replicate: only the interval (segs is uniform across the block)
      int oh_lo, oh_hi;
      conv_out_range(a == 0 ? ph.lo : a == 1 ? ph.m1 : ph.m2, a == 0 ? ph.hi : a == 1 ? ph.m1 : ph.m2, rdh, sh,
                     OH, oh_lo, oh_hi);
      for (int oh = oh_lo; oh <= oh_hi; ++oh) {
#pragma unroll
        for (int b = 0; b < 3; ++b) {
          if (b >= segs) break;
          int ow_lo, ow_hi;
          conv_out_range(b == 0 ? pw.lo : b == 1 ? pw.m1 : pw.m2, b == 0 ? pw.hi : b == 1 ? pw.m1 : pw.m2, sdw,
                         sw, OW, ow_lo, ow_hi);
          for (int ow = ow_lo; ow <= ow_hi; ++ow) v += g[oh * OW + ow];
        }
      }
    }
    return v;
  }
  __device__ __forceinline__ void load(int k0, ConvTileA& As, ConvTileB& Bs) {
    const int k = k0 + a_k;
    const int co = k / kHW, rs = k - co * kHW;
    const int abase = co * CkHW + rs;
#pragma unroll
    for (int i = 0; i < CONV_A_LOADS; ++i) {
      const int c = a_m0 + i * CONV_A_MSTEP;
      As[a_k][a_ml + i * CONV_A_MSTEP] = (c < C && k < K) ? w[abase + c * kHW] : T(0);
    }
    ConvKPos p = b_pos;
    // Not unrolled: each gather is a loop nest over the preimage entries, integer work rather than load
    // latency, and unrolling 8 of them made this kernel 35k SASS instructions and NVRTC's slowest build.
#pragma unroll 1
    for (int i = 0; i < CONV_B_LOADS; ++i) {
      const int jj = k0 + b_k + i * CONV_B_KSTEP;
      Bs[b_k + i * CONV_B_KSTEP][b_n] = jj < K ? gather(p) : T(0);  // straight to shared memory
      if (i + 1 < CONV_B_LOADS) conv_kpos_step(p, b_row_step, kH, kW);
    }
    conv_kpos_step(b_pos, b_tile_step, kH, kW);
  }
  __device__ __forceinline__ void store(ConvTileA&, ConvTileB&) const {}
};

// gx = d(loss)/dx as a gather: every element of gx is computed by exactly one thread (no atomics).
// Grid (ceil(N*H*W / BN), ceil(C / BM), G), block (BN/TN, BM/TM). Block (bx, by) computes gx for input
// channels by*BM .. +BM and flattened input positions p = n*H*W + h*W + w in bx*BN .. +BN; each thread a
// TM x TN micro-tile. Reads gy (N, C_out, OH, OW), w (C_out, C, kH, kW); writes gx (N, C, H, W).
// Note: with stride > 1 most (r, s) taps of a position have no output (oh not integral) and their B
// entries are zeros; a stride-phase decomposition would skip them, at the cost of one GEMM per phase.
// __launch_bounds__(CONV_THREADS, 1): the 1 (min blocks per SM) leaves ptxas free to use up to 255
// registers, as it does for the other kernels; without it, it capped this one at 128 in double and spilled.
extern "C" __global__ void __launch_bounds__(CONV_THREADS, 1)
conv2d_backward_data(const T* __restrict__ gy, const T* __restrict__ w, T* __restrict__ gx,
                     int N, int C, int H, int W, int Co, int kH, int kW, int OH, int OW, int sh, int sw,
                     int dh, int dw, int pt, int pb, int pl, int pr, int mode, int G) {
  __shared__ ConvTileA As[2];
  __shared__ ConvTileB Bs[2];
  const int tid = conv_tid();
  const int row0 = blockIdx.y * CONV_BM, col0 = blockIdx.x * CONV_BN;
  const int HW = H * W, P = N * HW, g = blockIdx.z;
  gy += g * Co * OH * OW;
  w += g * Co * C * kH * kW;

  ConvDgradLoader ld;
  ld.gy = gy; ld.w = w;
  ld.C = C; ld.kH = kH; ld.kW = kW; ld.kHW = kH * kW; ld.CkHW = C * kH * kW; ld.OH = OH; ld.OW = OW;
  ld.OHW = OH * OW;
  ld.sh = sh; ld.sw = sw; ld.dh = dh; ld.dw = dw; ld.K = Co * kH * kW;
  ld.segs = (mode == CONV_PAD_REFLECT || mode == CONV_PAD_CIRCULAR) ? 3 : 1;
  ld.a_k = tid % CONV_BK; ld.a_ml = tid / CONV_BK; ld.a_m0 = row0 + ld.a_ml;
  ld.b_k = tid / CONV_BN; ld.b_n = tid % CONV_BN;
  {
    const int p = col0 + ld.b_n;
    const bool ok = p < P;
    const int n = ok ? p / HW : 0, hw = p - n * HW, h = hw / W, wc = hw - h * W;
    ld.b_gbase = n * G * Co * ld.OHW;
    ld.ph = conv_pad_preimage(h, H, pt, pb, mode);
    ld.pw = conv_pad_preimage(wc, W, pl, pr, mode);
    if (!ok) ld.ph.lo = ld.ph.hi = ld.ph.m1 = ld.ph.m2 = CONV_NONE;  // outside the problem: gathers 0
  }

  T acc[CONV_TM][CONV_TN];
  ld.begin(0);
  conv_gemm_mainloop(ld, 0, ld.K, As, Bs, acc);

#pragma unroll
  for (int j = 0; j < CONV_TN; ++j) {
    const int p = col0 + threadIdx.x + j * (CONV_BN / CONV_TN);
    if (p >= P) continue;
    const int n = p / HW, hw = p - n * HW;
#pragma unroll
    for (int i = 0; i < CONV_TM; ++i) {
      const int c = row0 + threadIdx.y + i * (CONV_BM / CONV_TM);
      if (c < C) gx[(n * G * C + g * C + c) * HW + hw] = acc[i][j];
    }
  }
}
