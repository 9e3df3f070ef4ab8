/* The inline-PTX instructions tensor-core kernels are written with (asm statements translated by
 * ptx_rewrite.py into calls to these entry points; ptx_shim.h holds the per-thread ones):
 *
 *   mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32    PTX ISA 9.7.14.5.14, fragments 9.7.14.5.7
 *   mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}...   PTX ISA 9.7.14.5.14, fragments 9.7.14.5.8
 *   ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}.b16    PTX ISA 9.7.14.5.15
 *   cp.async.{ca,cg}.shared.global, commit/wait_group    PTX ISA 9.7.9.25.3.1 - 9.7.9.25.3.3
 *   cvta to/from the shared window                       PTX ISA 9.7.9.20 (__cvta_generic_to_shared)
 *
 * Shared-window addresses. A GPU gives shared memory its own 32-bit address space; here shared memory is
 * ordinary host memory (the kernel's static section, the module's common section, the dynamic block). Each
 * region gets a window at (index + 1) << 24 that keeps the low 12 bits of its host address, so alignment
 * (and swizzles computed on address bits) carries over; an address outside every window is an error.
 *
 * cp.async. A copy reads its source when issued (so a bad source pointer is reported at the cp.async) and
 * lands in shared memory only when the issuing thread's cp.async.wait_group / wait_all retires its group;
 * __syncthreads() does not complete it. A kernel that reads a stage before waiting for it therefore reads
 * the 0xFF poison (NaN) or the previous stage. Copies still pending when a thread exits are dropped. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "emu_internal.h"

namespace emu {
namespace {

struct Region {
  char *begin;
  unsigned long long size;
  unsigned long long window;
};
Region g_regions[3];

struct Copy {
  char *dst;
  long long group; /* -1 while not yet committed */
  int bytes;
  unsigned char data[16];
};
struct Queue {
  std::vector<Copy> copies;
  long long committed; /* groups committed so far by this thread */
};
std::vector<Queue> g_queues;

const char *region_name(int i) {
  static const char *const names[] = {"the kernel's static __shared__ memory", "module-scope __shared__ memory",
                                      "dynamic shared memory"};
  return names[i];
}

/* The host address of `bytes` bytes at shared-window address `addr`, or NULL. */
char *window_to_host(unsigned long long addr, unsigned long long bytes) {
  for (const Region &r : g_regions)
    if (r.size && addr >= r.window && addr - r.window < r.size) {
      if (addr - r.window + bytes > r.size) return nullptr;
      return r.begin + (addr - r.window);
    }
  return nullptr;
}

/* The region holding p; with one_past, a pointer just past a region's end counts too (as in C). */
int host_region(const char *p, bool one_past = false) {
  for (int i = 0; i < 3; ++i) {
    const Region &r = g_regions[i];
    if (r.size && p >= r.begin && (p < r.begin + r.size || (one_past && p == r.begin + r.size))) return i;
  }
  return -1;
}

[[noreturn]] void bad_shared(const char *what, unsigned long long addr, unsigned long long bytes, const char *file,
                             int line) {
  char where[160] = "";
  for (int i = 0; i < 3; ++i) {
    const Region &r = g_regions[i];
    if (r.size && addr >= r.window && addr - r.window < r.size + 65536)
      snprintf(where, sizeof where, ": it starts %llu bytes into %s, which holds %llu bytes", addr - r.window,
               region_name(i), r.size);
  }
  fail_current(EMU_ERR_ADDRESS, file, line,
               "%s: invalid access of %llu bytes at shared address 0x%llx%s (shared addresses come from "
               "__cvta_generic_to_shared of a pointer into shared memory)",
               what, bytes, addr, where[0] ? where : ", outside every shared-memory region");
}

char *shared_operand(const char *what, unsigned long long addr, int generic, unsigned long long bytes,
                     const char *file, int line) {
  char *p;
  if (generic) {
    p = (char *)(uintptr_t)addr;
    int r = host_region(p);
    if (r < 0 || (unsigned long long)(p - g_regions[r].begin) + bytes > g_regions[r].size)
      fail_current(EMU_ERR_ADDRESS, file, line,
                   "%s: generic address %p (%llu bytes) is not in shared memory", what, (void *)p, bytes);
  } else {
    p = window_to_host(addr, bytes);
    if (!p) bad_shared(what, addr, bytes, file, line);
  }
  if ((uintptr_t)p % bytes)
    fail_current(EMU_ERR_ADDRESS, file, line, "%s: shared address 0x%llx is not aligned to %llu bytes", what, addr,
                 bytes);
  return p;
}

/* ---- fragment formats */
float bits_float(unsigned int u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
/* TF32 operands: the tensor core reads the sign, the exponent and the top 10 mantissa bits and ignores the
 * low 13 (the PTX ISA leaves unrounded operands implementation-defined); truncating, as the hardware does,
 * means a kernel that forgets cvt.rna gets truncation here too. NaN stays NaN. */
float tf32_operand(unsigned int u) {
  if ((u & 0x7fffffffu) > 0x7f800000u) return bits_float(0x7fffffffu);
  return bits_float(u & 0xffffe000u);
}
float f16_to_float(unsigned int h) {
  unsigned int sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0x1f) return bits_float(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    if (!m) return bits_float(sign);
    e = 1;
    while (!(m & 0x400)) {
      m <<= 1;
      e--;
    }
    m &= 0x3ff;
  }
  return bits_float(sign | ((e + 112) << 23) | (m << 13));
}
float bf16_to_float(unsigned int h) { return bits_float((h & 0xffffu) << 16); }

/* D = A x B + C for one warp. Lane l, g = l >> 2, t = l & 3, holds (PTX ISA 9.7.14.5.7 / 9.7.14.5.8):
 *   m16n8k8 tf32:  a0 (g,t) a1 (g+8,t) a2 (g,t+4) a3 (g+8,t+4);  b0 (t,g) b1 (t+4,g)
 *   m16n8k16 f16/bf16, two elements per register, the lower column/row in the low half:
 *                  a0 (g,2t..) a1 (g+8,2t..) a2 (g,2t+8..) a3 (g+8,2t+8..);  b0 (2t..,g) b1 (2t+8..,g)
 *   C, D (f32):    c0 (g,2t) c1 (g,2t+1) c2 (g+8,2t) c3 (g+8,2t+1)
 * Products are exact in fp32 (at most 11 x 11 significant bits); the accumulation order (the PTX ISA leaves
 * it unspecified) is: start from c, add the products for k = 0, 1, ..., K-1, each addition rounded to
 * nearest-even in fp32. The hardware's order and rounding differ, so results agree bit for bit only where
 * every partial sum is exact (small integers). */
void mma(int kind, const void *const in[32], void *const out[32]) {
  float A[16][16], B[16][8], C[16][8];
  const int K = kind == EMU_W_MMA_TF32 ? 8 : 16;
  for (int l = 0; l < 32; ++l) {
    const unsigned int *r = (const unsigned int *)in[l];
    const int g = l >> 2, t = l & 3;
    if (kind == EMU_W_MMA_TF32) {
      A[g][t] = tf32_operand(r[0]);
      A[g + 8][t] = tf32_operand(r[1]);
      A[g][t + 4] = tf32_operand(r[2]);
      A[g + 8][t + 4] = tf32_operand(r[3]);
      B[t][g] = tf32_operand(r[4]);
      B[t + 4][g] = tf32_operand(r[5]);
    } else {
      float (*cvt)(unsigned int) = kind == EMU_W_MMA_F16 ? f16_to_float : bf16_to_float;
      for (int i = 0; i < 2; ++i) {
        A[g][2 * t + i] = cvt(r[0] >> (16 * i));
        A[g + 8][2 * t + i] = cvt(r[1] >> (16 * i));
        A[g][2 * t + 8 + i] = cvt(r[2] >> (16 * i));
        A[g + 8][2 * t + 8 + i] = cvt(r[3] >> (16 * i));
        B[2 * t + i][g] = cvt(r[4] >> (16 * i));
        B[2 * t + 8 + i][g] = cvt(r[5] >> (16 * i));
      }
    }
    C[g][2 * t] = bits_float(r[6]);
    C[g][2 * t + 1] = bits_float(r[7]);
    C[g + 8][2 * t] = bits_float(r[8]);
    C[g + 8][2 * t + 1] = bits_float(r[9]);
  }
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
    unsigned int *d = (unsigned int *)out[l];
    for (int i = 0; i < 4; ++i) {
      float acc = C[rows[i]][cols[i]];
      for (int k = 0; k < K; ++k) acc = acc + A[rows[i]][k] * B[k][cols[i]];
      memcpy(&d[i], &acc, 4);
    }
  }
}

/* Lanes 8j..8j+7 gave the row addresses of matrix j (each lane's `in` holds its row's host pointer). Lane
 * l, g = l >> 2, t = l & 3, receives in register j the pair (row g, columns 2t, 2t+1) of matrix j, or with
 * .trans the pair (rows 2t, 2t+1, column g), the lower index in the low 16 bits (PTX ISA 9.7.14.5.15). */
void ldmatrix(int num, int trans, const void *const in[32], void *const out[32]) {
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    unsigned int *d = (unsigned int *)out[l];
    for (int j = 0; j < num; ++j) {
      uint16_t lo, hi;
      if (trans) {
        const char *r0 = *(char *const *)in[8 * j + 2 * t], *r1 = *(char *const *)in[8 * j + 2 * t + 1];
        memcpy(&lo, r0 + 2 * g, 2);
        memcpy(&hi, r1 + 2 * g, 2);
      } else {
        const char *row = *(char *const *)in[8 * j + g];
        memcpy(&lo, row + 4 * t, 2);
        memcpy(&hi, row + 4 * t + 2, 2);
      }
      d[j] = (unsigned int)lo | ((unsigned int)hi << 16);
    }
  }
}

} // namespace

void ptx_launch(const EmuLaunch *L, char *dyn_smem, int nthreads) {
  char *begins[3] = {L->smem[0], L->smem[2], dyn_smem};
  unsigned long long sizes[3] = {
      L->smem[0] && L->smem[1] > L->smem[0] ? (unsigned long long)(L->smem[1] - L->smem[0]) : 0,
      L->smem[2] && L->smem[3] > L->smem[2] ? (unsigned long long)(L->smem[3] - L->smem[2]) : 0, L->dyn_smem};
  for (int i = 0; i < 3; ++i)
    g_regions[i] = Region{begins[i], sizes[i], ((unsigned long long)(i + 1) << 24) + ((uintptr_t)begins[i] & 0xfff)};
  g_queues.resize((size_t)nthreads);
}

void ptx_block_begin() {
  for (Queue &q : g_queues) {
    q.copies.clear();
    q.committed = 0;
  }
}

const char *ptx_name(int kind, int variant) {
  switch (kind) {
  case EMU_W_MMA_TF32: return "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32";
  case EMU_W_MMA_F16: return "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32";
  case EMU_W_MMA_BF16: return "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32";
  default: break;
  }
  static const char *const ld[] = {
      "ldmatrix.sync.aligned.m8n8.x1.shared.b16", "ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16",
      "ldmatrix.sync.aligned.m8n8.x2.shared.b16", "ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16",
      "ldmatrix.sync.aligned.m8n8.x4.shared.b16", "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"};
  int num = variant >> 1;
  int idx = (num == 4 ? 2 : num - 1) * 2 + (variant & 1);
  return variant == 0 ? "ldmatrix.sync.aligned.m8n8.shared.b16" : ld[idx < 0 || idx > 5 ? 0 : idx];
}

void ptx_complete(int kind, int variant, const void *const in[32], void *const out[32]) {
  if (kind == EMU_W_LDMATRIX) ldmatrix(variant >> 1, variant & 1, in, out);
  else mma(kind, in, out);
}

} // namespace emu

using namespace emu;

extern "C" unsigned int __emu_cvta_to_shared(const void *p, const char *file, int line) {
  int r = host_region((const char *)p, true);
  if (r < 0)
    fail_current(EMU_ERR_ADDRESS, file, line,
                 "__cvta_generic_to_shared(%p): the pointer is not in shared memory (the result would be "
                 "undefined on a GPU)",
                 p);
  return (unsigned int)(g_regions[r].window + (unsigned long long)((const char *)p - g_regions[r].begin));
}

extern "C" void *__emu_cvta_to_generic(unsigned long long addr, const char *file, int line) {
  char *p = window_to_host(addr, 0);
  if (!p && !(p = window_to_host(addr, 1))) bad_shared("__cvta_shared_to_generic", addr, 0, file, line);
  return p;
}

extern "C" void __emu_mma(int kind, const unsigned int *in, unsigned int *out, const char *file, int line) {
  warp_collective(kind, 0, in, out, file, line);
}

extern "C" void __emu_ldmatrix(int num, int trans, int generic, unsigned long long addr, unsigned int *out,
                               const char *file, int line) {
  const char *row = nullptr;
  // Only lanes 0..8*num-1 supply row addresses; the others' are ignored (PTX ISA 9.7.14.5.15).
  if ((current_thread() & 31) < 8 * num) row = shared_operand("ldmatrix row", addr, generic, 16, file, line);
  warp_collective(EMU_W_LDMATRIX, num * 2 + (trans ? 1 : 0), &row, out, file, line);
}

extern "C" void __emu_cp_async(unsigned long long dst, const void *src, int cp_size, long long src_size,
                               int cache_global, const char *file, int line) {
  if (cache_global ? cp_size != 16 : (cp_size != 4 && cp_size != 8 && cp_size != 16))
    fail_current(EMU_ERR_ADDRESS, file, line, "cp.async.%s: cp-size %d is not %s", cache_global ? "cg" : "ca",
                 cp_size, cache_global ? "16" : "4, 8 or 16");
  if (src_size < 0 || src_size > cp_size)
    fail_current(EMU_ERR_ADDRESS, file, line, "cp.async: src-size %lld is not in [0, cp-size=%d]", src_size, cp_size);
  char *d = shared_operand("cp.async destination", dst, 0, (unsigned long long)cp_size, file, line);
  if (src_size && (uintptr_t)src % (uintptr_t)cp_size)
    fail_current(EMU_ERR_ADDRESS, file, line, "cp.async: global source %p is not aligned to cp-size=%d bytes", src,
                 cp_size);
  Copy c;
  c.dst = d;
  c.group = -1;
  c.bytes = cp_size;
  memset(c.data, 0, sizeof c.data); // bytes past src-size are zero-filled
  const volatile unsigned char *s = (const volatile unsigned char *)src;
  for (long long i = 0; i < src_size; ++i) c.data[i] = s[i]; // a bad source faults here, at the cp.async
  g_queues[(size_t)current_thread()].copies.push_back(c);
}

extern "C" void __emu_cp_async_commit(void) {
  Queue &q = g_queues[(size_t)current_thread()];
  for (Copy &c : q.copies)
    if (c.group < 0) c.group = q.committed;
  q.committed++;
}

extern "C" void __emu_cp_async_wait(long long n, const char *file, int line) {
  if (n < 0) __emu_cp_async_commit(); // wait_all = commit_group; wait_group 0
  else if (n > 0xffff)
    fail_current(EMU_ERR_ADDRESS, file, line, "cp.async.wait_group %lld: N is out of range", n);
  Queue &q = g_queues[(size_t)current_thread()];
  const long long done = q.committed - (n < 0 ? 0 : n); // groups [0, done) must be complete
  size_t keep = 0;
  for (size_t i = 0; i < q.copies.size(); ++i) {
    Copy &c = q.copies[i];
    if (c.group >= 0 && c.group < done) memcpy(c.dst, c.data, (size_t)c.bytes);
    else q.copies[keep++] = c;
  }
  q.copies.resize(keep);
}
