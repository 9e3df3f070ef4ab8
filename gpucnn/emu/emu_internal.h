/* Declarations shared by the emulator runtime's translation units (not seen by kernels). */
#ifndef GPUCNN_EMU_INTERNAL_H
#define GPUCNN_EMU_INTERNAL_H

#include <setjmp.h>
#include <signal.h>
#include <stddef.h>

#include "emu_abi.h"

#if defined(__x86_64__) && defined(__ELF__) && !defined(EMU_FORCE_UCONTEXT)
#define EMU_X86_64_SWITCH 1
#else
#include <ucontext.h> /* portable but slow fallback: swapcontext makes a syscall per switch */
#endif

namespace emu {

/* A saved execution context: the scheduler's, or a fiber's while it is suspended. */
struct Ctx {
#ifdef EMU_X86_64_SWITCH
  void *sp;
#else
  ucontext_t uc;
#endif
};

/* A cooperative user-level thread with its own mmap'd stack (PROT_NONE guard page at the low end). */
struct Fiber {
  Ctx ctx;
  char *map;      /* mapping base: the guard page */
  size_t map_len; /* guard page + usable stack */
  int thread;     /* index (in the block) of the emulated CUDA thread it runs */
  bool parked;    /* at the top of its loop: can take a new thread without a reset */
  void (*fn)(void *);
  void *arg;
};

size_t page_size();
Fiber *fiber_new(size_t stack_bytes); /* NULL when out of memory */
void fiber_free(Fiber *f);
/* Make the next switch into f start fn(arg) on a fresh stack; fn must never return. */
void fiber_reset(Fiber *f, void (*fn)(void *), void *arg);
/* Save the running context into *from and resume *to. */
void ctx_switch(Ctx *from, Ctx *to);

/* Fault handling (faults.cpp). */
extern volatile sig_atomic_t g_in_fiber; /* a kernel thread is running on this launch's OS thread */
bool faults_arm(EmuError *err);          /* install SIGSEGV/SIGBUS handlers + alternate stack */
void faults_disarm();
sigjmp_buf *fault_jump_buffer();
/* Dynamic shared memory: the returned pointer has `bytes` (rounded up to 16) before a guard page. */
char *dyn_smem_base(unsigned long long bytes);
bool in_dyn_smem_guard(const char *addr);
char *dyn_smem_guard();

/* Scheduler hooks used by the fault handler (scheduler.cpp). */
void fault_record(int signo, const char *addr, int access);

/* Scheduler services for the inline-PTX instructions (ptx.cpp). */
int current_thread(); /* index in the block of the running thread */
[[noreturn]] void fail_current(int kind, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Wait until all 32 lanes of the caller's warp reach the same .aligned instruction (same kind, variant and
 * source line), then ptx_complete() runs once with every lane's in/out buffers. */
void warp_collective(int kind, int variant, const void *in, void *out, const char *file, int line);

/* Inline-PTX hooks called by the scheduler (ptx.cpp). */
void ptx_launch(const EmuLaunch *launch, char *dyn_smem, int nthreads);
void ptx_block_begin(); /* drops cp.async copies left pending by the previous block */
void ptx_complete(int kind, int variant, const void *const in[32], void *const out[32]);
/* The PTX name of a collective, e.g. "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16". */
const char *ptx_name(int kind, int variant);

} // namespace emu

#endif
