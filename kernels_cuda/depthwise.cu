// Depthwise conv2d (and conv1d as conv2d with H = 1): groups == C, C_out = m * C (channel multiplier m).
// Output channel o = c*m + j reads input channel c only, through its own kH x kW filter (PyTorch's grouped
// layout: group c holds output channels c*m .. c*m + m-1):
//   y[n, o, oh, ow] = b[o] + sum_{r, s} w[o, 0, r, s] * xpad[n, o / m, oh*sh + r*dh, ow*sw + s*dw]
// A GEMM per channel would have K = kH*kW (9): nothing to tile, so these are direct kernels, one thread
// per element of the array they write, the reduction in a fixed order (no atomics: deterministic).
//
// Layouts (C-contiguous): x / gx (N, C, H, W), w / gw (C*m, 1, kH, kW), bias (C*m,), y / gy (N, C*m, OH, OW).
// Padding through the four modes of conv.cu (conv_pad.cuh: xpad is never built, padded coordinates are
// mapped to their sources; the backward-data gather walks the inverse map). The bias gradient is conv.cu's
// conv2d_backward_bias (the same gy layout).
// 32-bit indexing: the host (gpucnn/functions/conv.py) checks every size against int32.
#include "common.cuh"
#include "conv_pad.cuh"

#ifndef DW_THREADS
#define DW_THREADS 256  // block size of every kernel here (the host mirrors it: conv.py _DW_THREADS)
#endif
static_assert(DW_THREADS % 32 == 0 && DW_THREADS <= 1024, "block size");

// Forward. Grid (ceil(N*C*m*OH*OW / DW_THREADS)), block (DW_THREADS). Thread i computes y's element i
// (n, o, oh, ow row-major): consecutive threads take consecutive ow, so a warp's loads of x are stride-sw
// runs of one row and its stores coalesced; the kH*kW weights of o are the same address across the warp
// (a broadcast) except where the warp crosses a channel. Sums over (r, s) in row-major order, bias last.
extern "C" __global__ void __launch_bounds__(DW_THREADS)
depthwise_forward(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias, int has_bias,
                  T* __restrict__ y, int N, int C, int H, int W, int m, int kH, int kW, int OH, int OW, int sh,
                  int sw, int dh, int dw, int pt, int pl, int mode) {
  const int Co = C * m, total = N * Co * OH * OW;
  const int i = blockIdx.x * DW_THREADS + threadIdx.x;
  if (i >= total) return;
  const int ow = i % OW, t = i / OW, oh = t % OH, no = t / OH, o = no % Co, n = no / Co;
  const T* xc = x + (n * C + o / m) * H * W;
  const T* wo = w + o * kH * kW;
  T acc = T(0);
  for (int r = 0; r < kH; ++r) {
    const int hi = conv_pad_source(oh * sh - pt + r * dh, H, mode);
    if (hi < 0) continue;
    for (int s = 0; s < kW; ++s) {
      const int wi = conv_pad_source(ow * sw - pl + s * dw, W, mode);
      if (wi >= 0) acc += wo[r * kW + s] * xc[hi * W + wi];
    }
  }
  y[i] = has_bias ? acc + bias[o] : acc;
}

// Backward-data, a gather. Grid (ceil(N*C*H*W / DW_THREADS)), block (DW_THREADS). Thread i computes gx's
// element i = (n, c, h, w): the sum over the multiplier j (in order), the taps (r, s) (row-major) and the
// padded positions that map onto (h, w) (conv_pad_preimage: the position itself for zeros padding, plus
// border images for the other modes) of w[c*m + j, r, s] * gy[n, c*m + j, oh, ow] for each output (oh, ow)
// whose tap (r, s) reads that position (conv_out_range: no position is tested one by one).
// __launch_bounds__(DW_THREADS, 1): as conv.cu's GEMMs, lets ptxas use the registers the preimage loop
// nest needs (without the minimum it held this kernel to 32 registers and spilled 60 bytes in double).
extern "C" __global__ void __launch_bounds__(DW_THREADS, 1)
depthwise_backward_data(const T* __restrict__ gy, const T* __restrict__ w, T* __restrict__ gx, int N, int C,
                        int H, int W, int m, int kH, int kW, int OH, int OW, int sh, int sw, int dh, int dw,
                        int pt, int pb, int pl, int pr, int mode) {
  const int total = N * C * H * W;
  const int i = blockIdx.x * DW_THREADS + threadIdx.x;
  if (i >= total) return;
  const int wc = i % W, t = i / W, h = t % H, nc = t / H, c = nc % C, n = nc / C;
  const ConvPreimage ph = conv_pad_preimage(h, H, pt, pb, mode), pw = conv_pad_preimage(wc, W, pl, pr, mode);
  const int segs = (mode == CONV_PAD_REFLECT || mode == CONV_PAD_CIRCULAR) ? 3 : 1;
  const int OHW = OH * OW;
  T acc = T(0);
  for (int j = 0; j < m; ++j) {
    const int o = c * m + j;
    const T* g = gy + (n * C * m + o) * OHW;
    const T* wo = w + o * kH * kW;
    for (int r = 0; r < kH; ++r) {
      for (int a = 0; a < segs; ++a) {
        int oh_lo, oh_hi;
        conv_out_range(a == 0 ? ph.lo : a == 1 ? ph.m1 : ph.m2, a == 0 ? ph.hi : a == 1 ? ph.m1 : ph.m2, r * dh,
                       sh, OH, oh_lo, oh_hi);
        for (int oh = oh_lo; oh <= oh_hi; ++oh) {
          for (int s = 0; s < kW; ++s) {
            const T wv = wo[r * kW + s];
            for (int b = 0; b < segs; ++b) {
              int ow_lo, ow_hi;
              conv_out_range(b == 0 ? pw.lo : b == 1 ? pw.m1 : pw.m2, b == 0 ? pw.hi : b == 1 ? pw.m1 : pw.m2,
                             s * dw, sw, OW, ow_lo, ow_hi);
              for (int ow = ow_lo; ow <= ow_hi; ++ow) acc += wv * g[oh * OW + ow];
            }
          }
        }
      }
    }
  }
  gx[i] = acc;
}

// Backward-filter, one block per weight: grid (kH*kW, C*m), block (DW_THREADS). Block (rs, o) computes
// gw[o, 0, r, s] = sum over q = (n, oh, ow) of gy[n, o, oh, ow] * xpad[n, o / m, oh*sh + r*dh, ow*sw + s*dw]:
// thread t sums q = t, t + DW_THREADS, ... (a warp reads 32 consecutive gy elements and a stride-sw run of
// x), then gpucnn_block_sum adds the threads' sums in a fixed tree order: deterministic.
extern "C" __global__ void __launch_bounds__(DW_THREADS)
depthwise_backward_filter(const T* __restrict__ x, const T* __restrict__ gy, T* __restrict__ gw, int N, int C,
                          int H, int W, int m, int kH, int kW, int OH, int OW, int sh, int sw, int dh, int dw,
                          int pt, int pl, int mode) {
  __shared__ T scratch[32];
  const int rs = blockIdx.x, o = blockIdx.y, r = rs / kW, s = rs - r * kW;
  const int Co = C * m, OHW = OH * OW, Q = N * OHW;
  T acc = T(0);
  for (int q = threadIdx.x; q < Q; q += DW_THREADS) {
    const int n = q / OHW, p = q - n * OHW, oh = p / OW, ow = p - oh * OW;
    const int hi = conv_pad_source(oh * sh - pt + r * dh, H, mode);
    const int wi = conv_pad_source(ow * sw - pl + s * dw, W, mode);
    if (hi >= 0 && wi >= 0) acc += gy[(n * Co + o) * OHW + p] * x[((n * C + o / m) * H + hi) * W + wi];
  }
  acc = gpucnn_block_sum(acc, scratch);
  if (threadIdx.x == 0) gw[o * kH * kW + rs] = acc;
}
