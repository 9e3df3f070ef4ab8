/* Fibers: mmap'd stacks with a guard page, and the context switch (x86-64 assembly or ucontext). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "emu_internal.h"

#ifdef EMU_X86_64_SWITCH
extern "C" void emu_ctx_switch(void **save_sp, void *load_sp);
extern "C" void emu_fiber_entry(void);
#endif

namespace emu {

size_t page_size() {
  static size_t ps = (size_t)sysconf(_SC_PAGESIZE);
  return ps;
}

Fiber *fiber_new(size_t stack_bytes) {
  size_t ps = page_size();
  size_t usable = (stack_bytes + ps - 1) / ps * ps;
  size_t len = usable + ps;
  void *map = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                   -1, 0);
  if (map == MAP_FAILED) return nullptr;
  // The guard page turns a stack overflow (big local arrays, deep recursion) into a reportable SIGSEGV;
  // kernels are compiled with -fstack-clash-protection so large frames cannot jump over it.
  if (mprotect(map, ps, PROT_NONE) != 0) {
    munmap(map, len);
    return nullptr;
  }
  Fiber *f = (Fiber *)calloc(1, sizeof(Fiber));
  if (!f) {
    munmap(map, len);
    return nullptr;
  }
  f->map = (char *)map;
  f->map_len = len;
  f->parked = true;
  return f;
}

void fiber_free(Fiber *f) {
  if (!f) return;
  munmap(f->map, f->map_len);
  free(f);
}

#ifdef EMU_X86_64_SWITCH

void fiber_reset(Fiber *f, void (*fn)(void *), void *arg) {
  f->fn = fn;
  f->arg = arg;
  f->parked = true;
  char *top = f->map + f->map_len; // page aligned
  // Frame popped by emu_ctx_switch: [mxcsr|fpucw] r15 r14 r13 r12 rbx rbp ret. After its `ret`, rsp is
  // sp + 64, which must be 16-byte aligned for the `call` in emu_fiber_entry.
  uint64_t *sp = (uint64_t *)(top - 64 - 16);
  uint32_t mxcsr;
  uint16_t fpucw;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  __asm__ volatile("fnstcw %0" : "=m"(fpucw));
  memset(sp, 0, 64);
  memcpy((char *)sp, &mxcsr, 4);
  memcpy((char *)sp + 4, &fpucw, 2);
  sp[3] = (uint64_t)(uintptr_t)fn;  // r13
  sp[4] = (uint64_t)(uintptr_t)arg; // r12
  sp[7] = (uint64_t)(uintptr_t)&emu_fiber_entry;
  f->ctx.sp = sp;
}

void ctx_switch(Ctx *from, Ctx *to) { emu_ctx_switch(&from->sp, to->sp); }

#else

static void uc_entry(unsigned int hi, unsigned int lo) {
  Fiber *f = (Fiber *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
  f->fn(f->arg);
  abort(); // fn never returns
}

void fiber_reset(Fiber *f, void (*fn)(void *), void *arg) {
  f->fn = fn;
  f->arg = arg;
  f->parked = true;
  getcontext(&f->ctx.uc);
  size_t ps = page_size();
  f->ctx.uc.uc_stack.ss_sp = f->map + ps;
  f->ctx.uc.uc_stack.ss_size = f->map_len - ps;
  f->ctx.uc.uc_link = nullptr;
  uintptr_t p = (uintptr_t)f;
  makecontext(&f->ctx.uc, (void (*)())uc_entry, 2, (unsigned int)(p >> 32), (unsigned int)(p & 0xffffffffu));
}

void ctx_switch(Ctx *from, Ctx *to) { swapcontext(&from->uc, &to->uc); }

#endif

} // namespace emu

/* ---- context-switch micro-benchmark (reported in docs/emulator.md) ---- */

static emu::Ctx g_bench_main;
static emu::Fiber *g_bench_fiber;

static void bench_entry(void *) {
  for (;;) emu::ctx_switch(&g_bench_fiber->ctx, &g_bench_main);
}

extern "C" double emu_bench_switch(long iterations) {
  emu::Fiber *f = emu::fiber_new(64 * 1024);
  if (!f) return -1.0;
  emu::fiber_reset(f, bench_entry, nullptr);
  g_bench_fiber = f;
  emu::ctx_switch(&g_bench_main, &f->ctx); // start it
  timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < iterations; ++i) emu::ctx_switch(&g_bench_main, &f->ctx);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  emu::fiber_free(f);
  double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
  return ns / (2.0 * (double)iterations); // each iteration switches in and back out
}
