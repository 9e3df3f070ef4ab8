// Inline-PTX instructions of tensor-core kernels, in the forms CUTLASS and hand-written kernels use.
// The kernels move raw registers only: fragment layouts are the business of the Python references
// (tests/emu/test_emu_ptx.py), written from the PTX ISA, so a layout bug cannot cancel itself out here.
typedef unsigned int u32;

// One warp: lane l passes a[4l..4l+3], b[2l..2l+1], c[4l..4l+3] (bit patterns) and gets d[4l..4l+3].
// kind 0: m16n8k8 tf32, 1: m16n8k16 f16, 2: m16n8k16 bf16, 3: tf32 with "+f" accumulators (D = C operands).
extern "C" __global__ void mma_regs(const u32* __restrict__ a, const u32* __restrict__ b, const float* __restrict__ c,
                                    float* __restrict__ d, int kind) {
  const int l = threadIdx.x;
  const u32 a0 = a[4 * l], a1 = a[4 * l + 1], a2 = a[4 * l + 2], a3 = a[4 * l + 3], b0 = b[2 * l], b1 = b[2 * l + 1];
  float d0, d1, d2, d3;
#define MMA_REGS(INSTR)                                                                                      \
  asm volatile(INSTR " {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"                          \
               : "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3)                                                      \
               : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1),                                       \
                 "f"(c[4 * l]), "f"(c[4 * l + 1]), "f"(c[4 * l + 2]), "f"(c[4 * l + 3]))
  if (kind == 0) {
    MMA_REGS("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32");
  } else if (kind == 1) {
    MMA_REGS("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32");
  } else if (kind == 2) {
    MMA_REGS("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32");
  } else {
    d0 = c[4 * l], d1 = c[4 * l + 1], d2 = c[4 * l + 2], d3 = c[4 * l + 3];
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3)
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
  d[4 * l] = d0, d[4 * l + 1] = d1, d[4 * l + 2] = d2, d[4 * l + 3] = d3;
}

// One mma per lane: every lane of the warp must reach it.
// With `diverge` set, lanes >= 16 skip the mma: the warp can never complete it.
extern "C" __global__ void mma_divergent(float* __restrict__ d, int diverge) {
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const u32 one = 0x3f800000u;  // 1.0f as tf32
  if (!diverge || (threadIdx.x & 31) < 16) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%4,%4,%4}, {%4,%4}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3]) : "r"(one));
  }
  d[threadIdx.x] = acc[0];
}

// Lanes < 16 and lanes >= 16 reach two different mma instructions.
extern "C" __global__ void mma_two_sites(float* __restrict__ d) {
  float x = 0.0f;
  const u32 one = 0x3f800000u;
  if ((threadIdx.x & 31) < 16)
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%0,%0,%0}, {%1,%1,%1,%1}, {%1,%1}, "
                 "{%0,%0,%0,%0};\n" : "+f"(x) : "r"(one));
  else
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%0,%0,%0}, {%1,%1,%1,%1}, {%1,%1}, "
                 "{%0,%0,%0,%0};\n" : "+f"(x) : "r"(one));
  d[threadIdx.x] = x;
}

// y[i] = cvt.rna.tf32.f32(x[i]) (bits), z[i] = the .satfinite form.
extern "C" __global__ void cvt_tf32(const float* __restrict__ x, u32* __restrict__ y, u32* __restrict__ z, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(y[i]) : "f"(x[i]));
  u32 s;
  asm volatile("cvt.rna.satfinite.tf32.f32 %0, %1;\n" : "=r"(s) : "f"(x[i]));
  z[i] = s;
}

// One warp. src (NELEM 16-bit values) is staged in dynamic shared memory; lane l passes the element offset
// rows[l] of its row address (negative: a garbage address, for lanes whose address the variant ignores).
// out[l * 4 + j] = register j. variant = 2 * num + trans.
#define LDMATRIX_CASE(NUM, TRANS, DST)                                                                       \
  asm volatile("ldmatrix.sync.aligned.m8n8.x" #NUM TRANS ".shared.b16 " DST ", [%4];\n"                     \
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr))
extern "C" __global__ void ldmatrix_regs(const unsigned short* __restrict__ src, const int* __restrict__ rows,
                                         u32* __restrict__ out, int nelem, int variant) {
  extern __shared__ __align__(16) unsigned short tile[];
  for (int i = threadIdx.x; i < nelem; i += blockDim.x) tile[i] = src[i];
  __syncthreads();
  const int l = threadIdx.x;
  const u32 addr = rows[l] >= 0 ? (u32)__cvta_generic_to_shared(tile + rows[l]) : 0xdead0000u;
  u32 r[4] = {0u, 0u, 0u, 0u};
  switch (variant) {
  case 2: LDMATRIX_CASE(1, "", "{%0}"); break;
  case 3: LDMATRIX_CASE(1, ".trans", "{%0}"); break;
  case 4: LDMATRIX_CASE(2, "", "{%0, %1}"); break;
  case 5: LDMATRIX_CASE(2, ".trans", "{%0, %1}"); break;
  case 8: LDMATRIX_CASE(4, "", "{%0, %1, %2, %3}"); break;
  default: LDMATRIX_CASE(4, ".trans", "{%0, %1, %2, %3}"); break;
  }
  for (int j = 0; j < 4; ++j) out[4 * l + j] = r[j];
}

// ldmatrix with a row address `shift` bytes past a 16-byte boundary (misaligned when shift % 16 != 0).
extern "C" __global__ void ldmatrix_shifted(u32* __restrict__ out, int shift) {
  __shared__ __align__(16) unsigned char tile[8 * 16 + 32];
  for (int i = threadIdx.x; i < (int)sizeof tile; i += blockDim.x) tile[i] = (unsigned char)i;
  __syncthreads();
  const u32 addr = (u32)__cvta_generic_to_shared(tile + 16 * (threadIdx.x & 7) + shift);
  u32 r;
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared::cta.b16 {%0}, [%1];" : "=r"(r) : "r"(addr));
  out[threadIdx.x] = r;
}

// __cvta_generic_to_shared of a global pointer: an error here (undefined on a GPU).
extern "C" __global__ void cvta_global(const float* __restrict__ x, u32* __restrict__ out) {
  out[threadIdx.x] = (u32)__cvta_generic_to_shared(x);
}

// Each thread copies 16 bytes (4 floats) of src into stage `s` of shared memory with cp.async.cg and
// src-size = min(16, src_bytes - 16 * thread) (the rest zero-filled), in two groups: stage 0 (elements
// [0, 4*nt)) then stage 1 (the next 4*nt). It records what it reads of its own slot of stage 0 before any
// wait (early), after wait_group 1 (mid: stage 0 done, stage 1 may be pending) and after wait_all (late).
extern "C" __global__ void cp_async_stages(const float* __restrict__ src, int src_bytes, float* __restrict__ early,
                                           float* __restrict__ mid0, float* __restrict__ mid1,
                                           float* __restrict__ late) {
  extern __shared__ __align__(16) float stage[];
  const int t = threadIdx.x, nt = blockDim.x;
  for (int s = 0; s < 2; ++s) {
    const int first = 16 * (s * nt + t);
    int bytes = src_bytes - first;
    bytes = bytes < 0 ? 0 : (bytes > 16 ? 16 : bytes);
    const float* g = bytes ? src + first / 4 : src;  // src-size 0 reads nothing: any pointer will do
    const u32 dst = (u32)__cvta_generic_to_shared(stage + 4 * (s * nt + t));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(g), "r"(bytes));
    asm volatile("cp.async.commit_group;\n" ::);
  }
  __syncthreads();  // does not complete the copies
  for (int k = 0; k < 4; ++k) early[4 * t + k] = stage[4 * t + k];
  asm volatile("cp.async.wait_group %0;\n" ::"n"(1));
  for (int k = 0; k < 4; ++k) {
    mid0[4 * t + k] = stage[4 * t + k];
    mid1[4 * t + k] = stage[4 * (nt + t) + k];
  }
  asm volatile("cp.async.wait_all;\n" ::);
  __syncthreads();
  for (int k = 0; k < 4; ++k) late[4 * t + k] = stage[4 * ((t + 1) % nt) + k];  // a neighbour's copy
}

// cp.async.ca with 4 and 8 bytes, an offset address operand, and the CUTLASS predicated form
// ({ .reg .pred p; setp.ne.b32 p, %0, 0; @p cp.async ... }): out[i] = src[i] where the thread's
// predicate holds, 0 where it copied nothing (the slot was zeroed first), for 4 threads x 4 floats.
// Without `commit`, wait_group 0 has no group to wait for: the copies are still pending when s is read.
#define CP_ASYNC_PRED(dst, src, n, pred)                                                                     \
  asm volatile("{\n  .reg .pred p;\n  setp.ne.b32 p, %0, 0;\n  @p cp.async.ca.shared.global [%1], [%2], %3;\n}\n" \
               ::"r"((int)(pred)), "r"(dst), "l"(src), "n"(n))
extern "C" __global__ void cp_async_small(const float* __restrict__ src, float* __restrict__ out, int skip,
                                          int commit) {
  __shared__ __align__(16) float s[16];
  const int t = threadIdx.x;
  for (int k = 0; k < 4; ++k) s[4 * t + k] = 0.0f;
  const u32 base = (u32)__cvta_generic_to_shared(s + 4 * t);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(base), "l"(src + 4 * t));
  asm volatile("cp.async.ca.shared.global [%0+4], [%1], 4, 4;\n" ::"r"(base), "l"(src + 4 * t + 1));
  CP_ASYNC_PRED(base + 8, src + 4 * t + 2, 8, t != skip);
  if (commit) asm volatile("cp.async.commit_group;\n" ::);
  asm volatile("cp.async.wait_group 0;\n" ::);
  for (int k = 0; k < 4; ++k) out[4 * t + k] = s[4 * t + k];
}

// A cp.async whose source runs past the end of src (no src-size): the read is an out-of-bounds error.
extern "C" __global__ void cp_async_overrun(const float* __restrict__ src, int offset) {
  __shared__ __align__(16) float s[4];
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"((u32)__cvta_generic_to_shared(s)),
               "l"(src + offset));
  asm volatile("cp.async.wait_all;\n" ::);
}

// asm volatile("" ::: "memory"), the usual compiler barrier, is accepted (a no-op here).
extern "C" __global__ void asm_barrier(float* x) {
  x[threadIdx.x] += 1.0f;
  asm volatile("" ::: "memory");
  x[threadIdx.x] *= 2.0f;
}
