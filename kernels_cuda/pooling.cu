// Pooling kernels: max, average, adaptive average, adaptive max and global average pooling, forward and
// backward.
//
// Layout everywhere: NCHW, C-contiguous. A "plane" is one (n, c) image: plane p = n * C + c starts at
// p * H * W in the input and at p * OH * OW in the output. Launched by gpucnn/functions/pooling.py,
// which mirrors the NumPy path of the same ops: the window geometry (padding, dilation, ceil_mode), the
// scan order of a window (row-major: window offset k = i * kw + j) and the divisors are those of the
// NumPy path, so max pooling and average pooling reproduce it bit for bit (their sums add the same
// terms in the same order; there is no product to contract into an FMA).
//
// Element types: T = float or double, or the 16-bit float types as bit patterns (T = gpucnn_u16 with
// GPUCNN_F16 / GPUCNN_BF16, see common.cuh): values are loaded into ACC (float for 16 bits), combined there
// and stored rounded once, so a 16-bit run equals the float32 computation on the same values, rounded.
//
// Indexing is 32-bit: the launcher checks that every array has at most 2^31 - 1 elements (and, for the
// adaptive kernels, that H * OH and W * OW fit as well). Backward passes are gathers: each thread
// computes one input-gradient element from the outputs whose windows contain it, in a fixed order, with
// no atomics, so they are deterministic.
#include "common.cuh"

// Threads per block of the one-thread-per-element kernels (the launcher uses 256; any multiple of 32 up
// to this works).
#ifndef POOL_THREADS
#define POOL_THREADS 256
#endif
// Threads per block of global average pooling (one warp per plane).
#ifndef GAP_THREADS
#define GAP_THREADS 256
#endif

// The global index of this thread, or -1 past `total` (computed unsigned: blockIdx * blockDim may pass
// 2^31 in the last block when total is close to 2^31 - 1).
__device__ __forceinline__ int pool_thread_index(int total) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  return i < (unsigned)total ? (int)i : -1;
}

// One window's divisor along one axis, the NumPy path's rule (and PyTorch's): the window is clipped to
// the padded input (ceil_mode windows may run past it); without count_include_pad only real pixels count.
__device__ __forceinline__ int avg_pool_extent(int o, int size, int k, int s, int p, int count_include_pad) {
  const int start = o * s - p;
  const int end = min(start + k, size + p);
  return count_include_pad ? end - start : min(end, size) - max(start, 0);
}

// ---------------------------------------------------------------------------------------------------
// max_pool2d_forward: one thread per output element y[p, oh, ow] (grid-x covers planes * OH * OW).
// Reads the window of x[p] (offsets (oh*sh - ph + i*dh, ow*sw - pw + j*dw); positions outside the
// input are -inf padding), writes y and argmax (int32: the flat index ih * W + iw of the FIRST maximum
// in row-major window order, or -1 when that maximum is padding, whose gradient goes nowhere).
// Ties and NaN follow the NumPy path: a later value wins only if strictly greater (`>`); a NaN makes the
// output NaN (np.maximum propagates it) and freezes the argmax, since nothing compares greater than NaN.
extern "C" __global__ void __launch_bounds__(POOL_THREADS)
max_pool2d_forward(const T* __restrict__ x, int planes, int H, int W, int OH, int OW, int kh, int kw,
                   int sh, int sw, int ph, int pw, int dh, int dw, T* __restrict__ y,
                   int* __restrict__ argmax) {
  const int idx = pool_thread_index(planes * OH * OW);
  if (idx < 0) return;
  const int ow = idx % OW, oh = (idx / OW) % OH, p = idx / (OH * OW);
  const T* xp = x + p * H * W;
  const int h0 = oh * sh - ph, w0 = ow * sw - pw;
  ACC best = gpucnn_neg_inf(ACC(0));
  int where = -1;
  bool first = true;
  for (int i = 0; i < kh; ++i) {
    const int ih = h0 + i * dh;
    const bool row_in = ih >= 0 && ih < H;
    for (int j = 0; j < kw; ++j) {
      const int iw = w0 + j * dw;
      const bool in = row_in && iw >= 0 && iw < W;
      const ACC v = in ? gpucnn_load(xp[ih * W + iw]) : gpucnn_neg_inf(ACC(0));
      if (first || v > best) {
        best = v;
        where = in ? ih * W + iw : -1;
      } else if (isnan(v)) {
        best = v;  // the output turns NaN; the argmax stays (nothing is > NaN afterwards)
      }
      first = false;
    }
  }
  y[idx] = gpucnn_store(best);  // (exact: best is one of the inputs)
  argmax[idx] = where;
}

// max_pool2d_backward: one thread per input element gx[p, ih, iw] (grid-x covers planes * H * W).
// Gathers gy[p, oh, ow] over the windows that contain (ih, iw) and recorded it as their argmax,
// visiting the window offsets k = i * kw + j in increasing order, the NumPy path's accumulation order.
extern "C" __global__ void __launch_bounds__(POOL_THREADS)
max_pool2d_backward(const T* __restrict__ gy, const int* __restrict__ argmax, int planes, int H, int W,
                    int OH, int OW, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                    T* __restrict__ gx) {
  const int idx = pool_thread_index(planes * H * W);
  if (idx < 0) return;
  const int iw = idx % W, ih = (idx / W) % H, p = idx / (H * W);
  const int me = ih * W + iw;
  const int base = p * OH * OW;
  ACC acc = ACC(0);
  for (int i = 0; i < kh; ++i) {
    const int th = ih + ph - i * dh;  // = oh * sh for the window whose offset i lands here
    if (th < 0) break;                // decreases with i
    const int oh = th / sh;
    if (oh * sh != th || oh >= OH) continue;
    for (int j = 0; j < kw; ++j) {
      const int tw = iw + pw - j * dw;
      if (tw < 0) break;
      const int ow = tw / sw;
      if (ow * sw != tw || ow >= OW) continue;
      const int o = base + oh * OW + ow;
      if (argmax[o] == me) acc += gpucnn_load(gy[o]);
    }
  }
  gx[idx] = gpucnn_store(acc);
}

// ---------------------------------------------------------------------------------------------------
// avg_pool2d_forward: one thread per output element y[p, oh, ow] (grid-x covers planes * OH * OW).
// Sums the real pixels of the window of x[p] row-major (zero padding adds nothing) and divides by the
// window's divisor (avg_pool_extent along H times along W), or by divisor_override when it is not 0
// (PyTorch's divisor_override: the host refuses 0 as a value).
extern "C" __global__ void __launch_bounds__(POOL_THREADS)
avg_pool2d_forward(const T* __restrict__ x, int planes, int H, int W, int OH, int OW, int kh, int kw,
                   int sh, int sw, int ph, int pw, int count_include_pad, int divisor_override,
                   T* __restrict__ y) {
  const int idx = pool_thread_index(planes * OH * OW);
  if (idx < 0) return;
  const int ow = idx % OW, oh = (idx / OW) % OH, p = idx / (OH * OW);
  const T* xp = x + p * H * W;
  const int h0 = oh * sh - ph, w0 = ow * sw - pw;
  const int h_begin = max(h0, 0), h_end = min(h0 + kh, H);
  const int w_begin = max(w0, 0), w_end = min(w0 + kw, W);
  ACC acc = ACC(0);
  for (int ih = h_begin; ih < h_end; ++ih)
    for (int iw = w_begin; iw < w_end; ++iw) acc += gpucnn_load(xp[ih * W + iw]);
  const int div = divisor_override ? divisor_override
                                   : avg_pool_extent(oh, H, kh, sh, ph, count_include_pad) *
                                         avg_pool_extent(ow, W, kw, sw, pw, count_include_pad);
  y[idx] = gpucnn_store(acc / ACC(div));
}

// avg_pool2d_backward: one thread per input element gx[p, ih, iw] (grid-x covers planes * H * W).
// Gathers gy[p, oh, ow] / divisor over the windows containing (ih, iw), window offsets in increasing
// order (the NumPy path divides gy first, then accumulates in that order); divisor_override as forward.
extern "C" __global__ void __launch_bounds__(POOL_THREADS)
avg_pool2d_backward(const T* __restrict__ gy, int planes, int H, int W, int OH, int OW, int kh, int kw,
                    int sh, int sw, int ph, int pw, int count_include_pad, int divisor_override,
                    T* __restrict__ gx) {
  const int idx = pool_thread_index(planes * H * W);
  if (idx < 0) return;
  const int iw = idx % W, ih = (idx / W) % H, p = idx / (H * W);
  const int base = p * OH * OW;
  ACC acc = ACC(0);
  for (int i = 0; i < kh; ++i) {
    const int th = ih + ph - i;
    if (th < 0) break;
    const int oh = th / sh;
    if (oh * sh != th || oh >= OH) continue;
    const int div_h = avg_pool_extent(oh, H, kh, sh, ph, count_include_pad);
    for (int j = 0; j < kw; ++j) {
      const int tw = iw + pw - j;
      if (tw < 0) break;
      const int ow = tw / sw;
      if (ow * sw != tw || ow >= OW) continue;
      const int div =
          divisor_override ? divisor_override : div_h * avg_pool_extent(ow, W, kw, sw, pw, count_include_pad);
      acc += gpucnn_load(gy[base + oh * OW + ow]) / ACC(div);
    }
  }
  gx[idx] = gpucnn_store(acc);
}

// ---------------------------------------------------------------------------------------------------
// adaptive_avg_pool2d_forward: one thread per output element y[p, oh, ow] (grid-x covers
// planes * OH * OW). Averages x[p] over PyTorch's bin rows floor(oh*H/OH) .. ceil((oh+1)*H/OH) - 1 and
// the same for columns (bins may overlap), summing row-major and dividing once by the bin's size.
extern "C" __global__ void __launch_bounds__(POOL_THREADS)
adaptive_avg_pool2d_forward(const T* __restrict__ x, int planes, int H, int W, int OH, int OW,
                            T* __restrict__ y) {
  const int idx = pool_thread_index(planes * OH * OW);
  if (idx < 0) return;
  const int ow = idx % OW, oh = (idx / OW) % OH, p = idx / (OH * OW);
  const T* xp = x + p * H * W;
  const int h_begin = oh * H / OH, h_end = GPUCNN_CEIL_DIV((oh + 1) * H, OH);
  const int w_begin = ow * W / OW, w_end = GPUCNN_CEIL_DIV((ow + 1) * W, OW);
  ACC acc = ACC(0);
  for (int ih = h_begin; ih < h_end; ++ih)
    for (int iw = w_begin; iw < w_end; ++iw) acc += gpucnn_load(xp[ih * W + iw]);
  y[idx] = gpucnn_store(acc / ACC((h_end - h_begin) * (w_end - w_begin)));
}

// adaptive_avg_pool2d_backward: one thread per input element gx[p, ih, iw] (grid-x covers
// planes * H * W). The bins containing row ih are oh = floor(ih*OH/H) .. ceil((ih+1)*OH/H) - 1 (the
// inverse of the bin formula; likewise columns); gathers gy[p, oh, ow] / bin size over them.
extern "C" __global__ void __launch_bounds__(POOL_THREADS)
adaptive_avg_pool2d_backward(const T* __restrict__ gy, int planes, int H, int W, int OH, int OW,
                             T* __restrict__ gx) {
  const int idx = pool_thread_index(planes * H * W);
  if (idx < 0) return;
  const int iw = idx % W, ih = (idx / W) % H, p = idx / (H * W);
  const T* g = gy + p * OH * OW;
  const int oh_begin = ih * OH / H, oh_end = min(GPUCNN_CEIL_DIV((ih + 1) * OH, H), OH);
  const int ow_begin = iw * OW / W, ow_end = min(GPUCNN_CEIL_DIV((iw + 1) * OW, W), OW);
  ACC acc = ACC(0);
  for (int oh = oh_begin; oh < oh_end; ++oh) {
    const int rows = GPUCNN_CEIL_DIV((oh + 1) * H, OH) - oh * H / OH;
    for (int ow = ow_begin; ow < ow_end; ++ow) {
      const int cols = GPUCNN_CEIL_DIV((ow + 1) * W, OW) - ow * W / OW;
      acc += gpucnn_load(g[oh * OW + ow]) / ACC(rows * cols);
    }
  }
  gx[idx] = gpucnn_store(acc);
}

// ---------------------------------------------------------------------------------------------------
// adaptive_max_pool2d_forward: one thread per output element y[p, oh, ow] (grid-x covers
// planes * OH * OW). Scans the bin of x[p] (PyTorch's bins, as adaptive_avg_pool2d_forward) row-major
// and writes its maximum to y and, to argmax (int32), the flat index ih * W + iw of the FIRST maximum;
// a NaN wins over every number and the first NaN is kept (the NumPy path's np.argmax), so the output is
// that NaN and its gradient goes there.
extern "C" __global__ void __launch_bounds__(POOL_THREADS)
adaptive_max_pool2d_forward(const T* __restrict__ x, int planes, int H, int W, int OH, int OW,
                            T* __restrict__ y, int* __restrict__ argmax) {
  const int idx = pool_thread_index(planes * OH * OW);
  if (idx < 0) return;
  const int ow = idx % OW, oh = (idx / OW) % OH, p = idx / (OH * OW);
  const T* xp = x + p * H * W;
  const int h_begin = oh * H / OH, h_end = GPUCNN_CEIL_DIV((oh + 1) * H, OH);
  const int w_begin = ow * W / OW, w_end = GPUCNN_CEIL_DIV((ow + 1) * W, OW);
  ACC best = gpucnn_load(xp[h_begin * W + w_begin]);
  int where = h_begin * W + w_begin;
  for (int ih = h_begin; ih < h_end; ++ih)
    for (int iw = w_begin; iw < w_end; ++iw) {
      const ACC v = gpucnn_load(xp[ih * W + iw]);
      if (!isnan(best) && (v > best || isnan(v))) {
        best = v;
        where = ih * W + iw;
      }
    }
  y[idx] = gpucnn_store(best);  // (exact: best is one of the inputs)
  argmax[idx] = where;
}

// adaptive_max_pool2d_backward: one thread per input element gx[p, ih, iw] (grid-x covers
// planes * H * W). Visits the bins containing (ih, iw) (the inverse bin formula of
// adaptive_avg_pool2d_backward) in row-major order and adds gy[p, oh, ow] of those whose argmax it is:
// the order in which the NumPy path's np.add.at adds them.
extern "C" __global__ void __launch_bounds__(POOL_THREADS)
adaptive_max_pool2d_backward(const T* __restrict__ gy, const int* __restrict__ argmax, int planes, int H,
                             int W, int OH, int OW, T* __restrict__ gx) {
  const int idx = pool_thread_index(planes * H * W);
  if (idx < 0) return;
  const int iw = idx % W, ih = (idx / W) % H, p = idx / (H * W);
  const int me = ih * W + iw, base = p * OH * OW;
  const int oh_begin = ih * OH / H, oh_end = min(GPUCNN_CEIL_DIV((ih + 1) * OH, H), OH);
  const int ow_begin = iw * OW / W, ow_end = min(GPUCNN_CEIL_DIV((iw + 1) * OW, W), OW);
  ACC acc = ACC(0);
  for (int oh = oh_begin; oh < oh_end; ++oh)
    for (int ow = ow_begin; ow < ow_end; ++ow) {
      const int o = base + oh * OW + ow;
      if (argmax[o] == me) acc += gpucnn_load(gy[o]);
    }
  gx[idx] = gpucnn_store(acc);
}

// ---------------------------------------------------------------------------------------------------
// global_avg_pool2d_forward: one WARP per plane (blockDim.x / 32 planes per block; grid-x covers
// planes). Lane l sums x[p, l], x[p, l + 32], ... (HW = H * W contiguous values), then a warp-shuffle
// tree adds the 32 partial sums (fixed order: deterministic), and lane 0 writes y[p] = sum / HW.
// Accumulates in ACC: each lane adds HW/32 values, so the rounding error stays below
// (HW/32 + 5) ulp of mean|x| (12 ulp for a 14x14 feature map).
extern "C" __global__ void __launch_bounds__(GAP_THREADS)
global_avg_pool2d_forward(const T* __restrict__ x, int planes, int HW, T* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int p = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (p < planes) {  // the same for all 32 lanes of a warp, so the whole warp reaches the shuffles
    const T* xp = x + p * HW;
    ACC acc = ACC(0);
    for (int i = lane; i < HW; i += 32) acc += gpucnn_load(xp[i]);
    acc = gpucnn_warp_sum(acc);
    if (lane == 0) y[p] = gpucnn_store(acc / ACC(HW));
  }
}

// global_avg_pool2d_backward: one thread per input element gx[p, i] = gy[p] / HW (grid-x covers
// planes * HW; gy is (planes,), gx is (planes, HW)).
extern "C" __global__ void __launch_bounds__(POOL_THREADS)
global_avg_pool2d_backward(const T* __restrict__ gy, int planes, int HW, T* __restrict__ gx) {
  const int idx = pool_thread_index(planes * HW);
  if (idx < 0) return;
  gx[idx] = gpucnn_store(gpucnn_load(gy[idx / HW]) / ACC(HW));
}
