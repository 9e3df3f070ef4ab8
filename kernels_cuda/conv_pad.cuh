// Padding through the four modes of gpucnn.functions._conv_util.PADDING_MODES, as index maps: shared by
// conv.cu and depthwise.cu. A padded input is never built: a padded coordinate is mapped to its source
// coordinate in x (or to "zero") by conv_pad_source, and the backward-data gathers walk the inverse map
// (conv_pad_preimage, conv_out_range).
#pragma once

// Padding modes (the host passes the index of the mode in gpucnn.functions.conv.PADDING_MODES).
#define CONV_PAD_ZEROS 0
#define CONV_PAD_REFLECT 1
#define CONV_PAD_REPLICATE 2
#define CONV_PAD_CIRCULAR 3

// floor(a / b) and ceil(a / b) for b > 0 and any sign of a (C division truncates towards zero).
__device__ __forceinline__ int conv_floor_div(int a, int b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }
__device__ __forceinline__ int conv_ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// The source coordinate in [0, n) of position i = padded - before along a dim of input size n, or -1 when
// the padded position is zero. The host guarantees padding < n for reflect and <= n for circular, so one
// mirror / one wrap suffices (as in the NumPy path's _border_sources).
__device__ __forceinline__ int conv_pad_source(int i, int n, int mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case CONV_PAD_REFLECT: return i < 0 ? -i : 2 * (n - 1) - i;
    case CONV_PAD_REPLICATE: return i < 0 ? 0 : n - 1;
    case CONV_PAD_CIRCULAR: return i < 0 ? i + n : i - n;
    default: return -1;  // zeros
  }
}

// The inverse map: the padded coordinates p in [0, before + n + after) with conv_pad_source(p - before)
// == i, for 0 <= i < n: an interval [pre.lo, pre.hi] plus two single positions pre.m1, pre.m2, each of
// them CONV_NONE when absent:
//   zeros       the position itself;
//   replicate   the position, widened to the whole top/left border for i = 0 and bottom/right for i = n-1;
//   reflect     the position and its mirror images in the top/left (m1) and the bottom/right (m2) border;
//   circular    the position and its wrapped images in the top/left (m1) and the bottom/right (m2) border.
// CONV_NONE is so negative that conv_out_range finds no output for it: absent entries need no branch.
#define CONV_NONE (-(1 << 28))
struct ConvPreimage {
  int lo, hi, m1, m2;
};

__device__ __forceinline__ ConvPreimage conv_pad_preimage(int i, int n, int before, int after, int mode) {
  const int p = before + i, last = before + n + after - 1;
  ConvPreimage pre;
  pre.lo = pre.hi = p;
  pre.m1 = pre.m2 = CONV_NONE;
  if (mode == CONV_PAD_REPLICATE) {
    if (i == 0) pre.lo = 0;
    if (i == n - 1) pre.hi = last;
  } else if (mode == CONV_PAD_REFLECT) {
    if (i >= 1 && before - i >= 0) pre.m1 = before - i;  // padded position of -i
    if (i <= n - 2 && before + 2 * (n - 1) - i <= last) pre.m2 = before + 2 * (n - 1) - i;
  } else if (mode == CONV_PAD_CIRCULAR) {
    if (p - n >= 0) pre.m1 = p - n;
    if (p + n <= last) pre.m2 = p + n;
  }
  return pre;
}

// The outputs o in [0, count) whose window tap at offset `off` (r*dh) reads a padded position in [lo, hi]:
// o*stride + off in [lo, hi], i.e. o in [ceil((lo - off) / stride), floor((hi - off) / stride)] (empty
// when o_lo > o_hi).
__device__ __forceinline__ void conv_out_range(int lo, int hi, int off, int stride, int count, int& o_lo,
                                               int& o_hi) {
  if (stride == 1) {  // uniform across the block: skips the divisions in the common case
    o_lo = max(0, lo - off);
    o_hi = min(count - 1, hi - off);
  } else {
    o_lo = max(0, conv_ceil_div(lo - off, stride));
    o_hi = min(count - 1, conv_floor_div(hi - off, stride));
  }
}

