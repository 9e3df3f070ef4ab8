/* The block scheduler: runs the threads of one block at a time as fibers, releases __syncthreads()
 * barriers and warp operations, and reports deadlocks, traps and faults instead of hanging or dying. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vector>

#include "emu_internal.h"

extern "C" {
struct uint3 __emu_threadIdx, __emu_blockIdx, __emu_blockDim, __emu_gridDim;
char *__emu_dyn_smem;
}

namespace emu {
namespace {

enum : unsigned char { TS_NEW, TS_READY, TS_RUNNING, TS_BAR, TS_WARP, TS_DONE };

struct Thr {
  uint3 tid;
  unsigned char state;
  int op; /* EMU_B_* while at a barrier, EMU_W_* while in a warp op */
  Fiber *fiber;
  const char *file; /* where it waits */
  int line;
  int pred, bres;   /* barrier predicate and result (__syncthreads_count & co) */
  unsigned int mask; /* warp op operands and result */
  int b, width, size;
  unsigned long long val, res;
  const void *cin; /* a warp collective's operands and results (on the lane's stack while it waits) */
  void *cout;
};

struct State {
  const EmuLaunch *L;
  EmuError *err;
  std::vector<Thr> thr;
  int n; /* threads per block */
  std::vector<int> perm;
  int cur; /* index of the running thread */
  Ctx sched;
  int n_done, n_bar, n_warp, n_ready;
  uint64_t rng;
  std::vector<Fiber *> fibers, idle; /* all fibers; those free to take a new thread */
  bool activemask_pending;            /* some thread waits in __activemask() */
  size_t stack_bytes;
};

State S;

uint64_t splitmix(uint64_t &s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void set_thread_of(EmuError *e, int t) {
  e->thread[0] = S.thr[t].tid.x;
  e->thread[1] = S.thr[t].tid.y;
  e->thread[2] = S.thr[t].tid.z;
}

void appendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void appendf(const char *fmt, ...) {
  size_t len = strlen(S.err->message);
  if (len + 1 >= sizeof S.err->message) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(S.err->message + len, sizeof S.err->message - len, fmt, ap);
  va_end(ap);
}

void fiber_main(void *arg);

Fiber *take_fiber() {
  if (!S.idle.empty()) {
    Fiber *f = S.idle.back();
    S.idle.pop_back();
    return f;
  }
  Fiber *f = fiber_new(S.stack_bytes);
  if (!f) return nullptr;
  fiber_reset(f, fiber_main, f);
  S.fibers.push_back(f);
  return f;
}

/* Each fiber loops: run the kernel for the thread it was given, park, repeat. A kernel without barriers
 * therefore runs every thread straight through on one hot stack. */
void fiber_main(void *arg) {
  Fiber *f = (Fiber *)arg;
  for (;;) {
    f->parked = false;
    S.L->tramp(S.L->args);
    S.thr[f->thread].state = TS_DONE;
    f->parked = true;
    ctx_switch(&f->ctx, &S.sched);
  }
}

/* Called on a kernel thread's fiber: give control back to the scheduler until resumed. */
inline void yield_to_scheduler() { ctx_switch(&S.thr[S.cur].fiber->ctx, &S.sched); }

/* Called on a kernel thread's fiber: end the launch with the error already written into S.err. */
[[noreturn]] void abort_launch() {
  yield_to_scheduler(); // never resumed: the scheduler sees S.err->kind and unwinds the launch
  abort();
}

} // namespace

void fail_current(int kind, const char *file, int line, const char *fmt, ...) {
  EmuError *e = S.err;
  e->kind = kind;
  e->file = file;
  e->line = line;
  set_thread_of(e, S.cur);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  abort_launch();
}

namespace {

void run_thread(int t) {
  Thr &th = S.thr[t];
  if (th.state == TS_NEW) {
    Fiber *f = take_fiber();
    if (!f) {
      S.err->kind = EMU_ERR_INTERNAL;
      snprintf(S.err->message, sizeof S.err->message, "cannot allocate a stack for thread %d", t);
      return;
    }
    th.fiber = f;
    f->thread = t;
  }
  th.state = TS_RUNNING;
  S.cur = t;
  __emu_threadIdx = th.tid;
  g_in_fiber = 1;
  ctx_switch(&S.sched, &th.fiber->ctx);
  g_in_fiber = 0;
  if (th.state == TS_DONE) {
    S.idle.push_back(th.fiber);
    th.fiber = nullptr;
    S.n_done++;
  }
}

const char *barrier_name(int op) {
  switch (op) {
  case EMU_B_COUNT: return "__syncthreads_count()";
  case EMU_B_AND: return "__syncthreads_and()";
  case EMU_B_OR: return "__syncthreads_or()";
  default: return "__syncthreads()";
  }
}

const char *warp_name(int kind) {
  switch (kind) {
  case EMU_W_SHFL_IDX: return "__shfl_sync";
  case EMU_W_SHFL_UP: return "__shfl_up_sync";
  case EMU_W_SHFL_DOWN: return "__shfl_down_sync";
  case EMU_W_SHFL_XOR: return "__shfl_xor_sync";
  case EMU_W_BALLOT: return "__ballot_sync";
  case EMU_W_ANY: return "__any_sync";
  case EMU_W_ALL: return "__all_sync";
  case EMU_W_SYNCWARP: return "__syncwarp";
  case EMU_W_MATCH_ANY: return "__match_any_sync";
  case EMU_W_REDUCE_ADD: return "__reduce_add_sync";
  case EMU_W_REDUCE_MIN_U: case EMU_W_REDUCE_MIN_I: return "__reduce_min_sync";
  case EMU_W_REDUCE_MAX_U: case EMU_W_REDUCE_MAX_I: return "__reduce_max_sync";
  case EMU_W_REDUCE_AND: return "__reduce_and_sync";
  case EMU_W_REDUCE_OR: return "__reduce_or_sync";
  case EMU_W_REDUCE_XOR: return "__reduce_xor_sync";
  case EMU_W_ACTIVEMASK: return "__activemask";
  case EMU_W_MMA_TF32: case EMU_W_MMA_F16: case EMU_W_MMA_BF16: case EMU_W_LDMATRIX: return ptx_name(kind, 0);
  default: return "warp op";
  }
}

void append_tid(int t) {
  const uint3 &d = S.thr[t].tid;
  appendf("(%u,%u,%u)", d.x, d.y, d.z);
}

const char *state_words(const Thr &o) {
  switch (o.state) {
  case TS_DONE: return "has exited";
  case TS_BAR: return "waits at a block barrier";
  case TS_WARP: return "waits in another warp op";
  default: return "is running";
  }
}

/* A group of waiting threads for the deadlock report. */
struct Group {
  unsigned char state;
  int op;
  const char *file;
  int line;
  unsigned int mask;
  int count;
  int first[3];
};

void report_deadlock() {
  EmuError *e = S.err;
  e->kind = EMU_ERR_DEADLOCK;
  e->message[0] = 0;
  std::vector<Group> groups;
  int first_waiter = -1;
  for (int t = 0; t < S.n; ++t) {
    const Thr &o = S.thr[t];
    if (o.state != TS_DONE && first_waiter < 0) first_waiter = t;
    bool found = false;
    for (Group &g : groups) {
      bool same = g.state == o.state &&
                  (o.state == TS_DONE || (g.op == o.op && g.file == o.file && g.line == o.line &&
                                          (o.state != TS_WARP || g.mask == o.mask)));
      if (same) {
        if (g.count < 3) g.first[g.count] = t;
        g.count++;
        found = true;
        break;
      }
    }
    if (!found) groups.push_back(Group{o.state, o.op, o.file, o.line, o.mask, 1, {t, -1, -1}});
  }
  set_thread_of(e, first_waiter >= 0 ? first_waiter : 0);
  if (first_waiter >= 0) {
    e->file = S.thr[first_waiter].file;
    e->line = S.thr[first_waiter].line;
  }
  appendf("no thread of the block can make progress:");
  for (const Group &g : groups) {
    appendf("\n  %d thread(s) ", g.count);
    if (g.state == TS_DONE) appendf("have exited");
    else if (g.state == TS_BAR) appendf("wait at %s (%s:%d)", barrier_name(g.op), g.file, g.line);
    else appendf("wait in %s(mask=0x%08x) (%s:%d)", warp_name(g.op), g.mask, g.file, g.line);
    appendf(", e.g. thread");
    for (int i = 0; i < g.count && i < 3; ++i) {
      appendf(i ? ", " : " ");
      append_tid(g.first[i]);
    }
    if (g.state == TS_WARP) {
      // Name the lanes the op waits for and what they do instead.
      int t = g.first[0];
      int base = t & ~31;
      int shown = 0;
      for (int lane = 0; lane < 32 && base + lane < S.n; ++lane) {
        const Thr &o = S.thr[base + lane];
        if (!((g.mask >> lane) & 1) || o.state == TS_WARP) continue;
        if (shown++ == 3) {
          appendf(", ...");
          break;
        }
        appendf(shown == 1 ? "; it waits for lane %d = thread " : ", lane %d = thread ", lane);
        append_tid(base + lane);
        appendf(" which %s", state_words(o));
      }
    }
  }
  appendf("\n  Every thread of a block must reach each __syncthreads() (no early return before a barrier), and "
          "every lane named in a warp op's mask must reach the same op.");
}

/* All threads wait at a barrier: check they wait at the same one, compute the _count/_and/_or result. */
bool release_barrier() {
  const Thr &t0 = S.thr[0];
  int count = 0;
  for (int t = 0; t < S.n; ++t) {
    const Thr &o = S.thr[t];
    if (o.file != t0.file || o.line != t0.line || o.op != t0.op) {
      EmuError *e = S.err;
      e->kind = EMU_ERR_DEADLOCK;
      e->file = o.file;
      e->line = o.line;
      set_thread_of(e, t);
      snprintf(e->message, sizeof e->message,
               "divergent barrier: thread (%u,%u,%u) waits at %s (%s:%d) while thread (%u,%u,%u) waits at %s "
               "(%s:%d); all threads of a block must reach the same __syncthreads() call",
               o.tid.x, o.tid.y, o.tid.z, barrier_name(o.op), o.file, o.line, t0.tid.x, t0.tid.y, t0.tid.z,
               barrier_name(t0.op), t0.file, t0.line);
      return false;
    }
    count += o.pred;
  }
  int res = count;
  if (t0.op == EMU_B_AND) res = count == S.n;
  else if (t0.op == EMU_B_OR) res = count > 0;
  for (int t = 0; t < S.n; ++t) {
    S.thr[t].state = TS_READY;
    S.thr[t].bres = res;
  }
  S.n_bar = 0;
  S.n_ready = S.n;
  return true;
}

void poison_shared() {
  const EmuLaunch *L = S.L;
  for (int i = 0; i < 4; i += 2)
    if (L->smem[i] && L->smem[i + 1] > L->smem[i]) memset(L->smem[i], 0xff, (size_t)(L->smem[i + 1] - L->smem[i]));
  if (L->dyn_smem) memset(__emu_dyn_smem, 0xff, (size_t)((L->dyn_smem + 15) & ~15ull));
}

/* Release __activemask() callers of every warp none of whose lanes can still run (see __emu_activemask). */
void release_activemasks() {
  S.activemask_pending = false;
  for (int base = 0; base < S.n; base += 32) {
    int end = base + 32 < S.n ? base + 32 : S.n;
    bool waiting = false, runnable = false;
    for (int t = base; t < end; ++t) {
      unsigned char st = S.thr[t].state;
      if (st == TS_WARP && S.thr[t].op == EMU_W_ACTIVEMASK) waiting = true;
      else if (st == TS_NEW || st == TS_READY || st == TS_RUNNING) runnable = true;
    }
    if (!waiting) continue;
    if (runnable) {
      S.activemask_pending = true;
      continue;
    }
    for (int t = base; t < end; ++t) {
      Thr &a = S.thr[t];
      if (a.state != TS_WARP || a.op != EMU_W_ACTIVEMASK) continue;
      unsigned int m = 0;
      for (int u = base; u < end; ++u) {
        const Thr &b = S.thr[u];
        if (b.state == TS_WARP && b.op == EMU_W_ACTIVEMASK && b.file == a.file && b.line == a.line)
          m |= 1u << (u - base);
      }
      a.res = m;
    }
    for (int t = base; t < end; ++t)
      if (S.thr[t].state == TS_WARP && S.thr[t].op == EMU_W_ACTIVEMASK) {
        S.thr[t].state = TS_READY;
        S.n_warp--;
        S.n_ready++;
      }
  }
}

bool run_block() {
  for (int t = 0; t < S.n; ++t) {
    S.thr[t].state = TS_NEW;
    S.thr[t].fiber = nullptr;
  }
  S.n_done = S.n_bar = S.n_warp = S.n_ready = 0;
  S.activemask_pending = false;
  poison_shared();
  ptx_block_begin();
  for (;;) {
    if (S.L->order == EMU_ORDER_SHUFFLED)
      for (int i = S.n - 1; i > 0; --i) {
        int j = (int)(splitmix(S.rng) % (uint64_t)(i + 1));
        int tmp = S.perm[i];
        S.perm[i] = S.perm[j];
        S.perm[j] = tmp;
      }
    for (int k = 0; k < S.n; ++k) {
      int t = S.perm[k];
      unsigned char st = S.thr[t].state;
      if (st != TS_NEW && st != TS_READY) continue;
      if (st == TS_READY) S.n_ready--;
      run_thread(t);
      if (S.err->kind) return false;
    }
    if (S.n_done == S.n) return true;
    if (S.activemask_pending) release_activemasks();
    if (S.n_ready) continue; // a warp op completed during the round
    if (S.n_bar == S.n) {
      if (!release_barrier()) return false;
      continue;
    }
    report_deadlock();
    return false;
  }
}

uint64_t gcd(uint64_t a, uint64_t b) {
  while (b) {
    uint64_t r = a % b;
    a = b;
    b = r;
  }
  return a;
}

void run_grid() {
  const EmuLaunch *L = S.L;
  uint64_t gx = L->grid[0], gy = L->grid[1], gz = L->grid[2];
  uint64_t nb = gx * gy * gz;
  // Blocks follow the same order as threads; shuffled uses an affine bijection i -> (a*i + c) mod nb.
  uint64_t a = 1, c = 0;
  if (L->order == EMU_ORDER_SHUFFLED && nb > 1) {
    uint64_t s = L->seed ^ 0x5851f42d4c957f2dull;
    a = splitmix(s) % nb | 1;
    while (gcd(a, nb) != 1) a = (a + 2) % nb | 1;
    c = splitmix(s) % nb;
  }
  for (uint64_t i = 0; i < nb; ++i) {
    uint64_t lin = i;
    if (L->order == EMU_ORDER_REVERSE) lin = nb - 1 - i;
    else if (L->order == EMU_ORDER_SHUFFLED) lin = (uint64_t)(((unsigned __int128)a * i + c) % nb);
    __emu_blockIdx.x = (unsigned)(lin % gx);
    __emu_blockIdx.y = (unsigned)(lin / gx % gy);
    __emu_blockIdx.z = (unsigned)(lin / (gx * gy));
    S.err->block[0] = __emu_blockIdx.x;
    S.err->block[1] = __emu_blockIdx.y;
    S.err->block[2] = __emu_blockIdx.z;
    S.rng = L->seed * 0x2545f4914f6cdd1dull + lin + 1;
    if (!run_block()) return;
  }
}

/* After an aborted launch the fibers that were mid-kernel hold stale stacks: restart them. */
void reset_busy_fibers() {
  S.idle.clear();
  for (Fiber *f : S.fibers) {
    if (!f->parked) fiber_reset(f, fiber_main, f);
    S.idle.push_back(f);
  }
}

bool is_collective(int op) { return op >= EMU_W_MMA_TF32 && op <= EMU_W_LDMATRIX; }

bool any_lane_poison(int j, int base, unsigned int part) {
  return j < 0 || j > 31 || !((part >> j) & 1) || base + j >= S.n;
}

/* Every lane of `part` waits in a warp op: check they agree, compute every result, wake them all. */
void complete_warp_op(int base, unsigned int part, const Thr &me) {
  bool collective = is_collective(me.op);
  for (int lane = 0; lane < 32; ++lane) {
    if (!((part >> lane) & 1)) continue;
    const Thr &o = S.thr[base + lane];
    if (collective && (o.op != me.op || o.b != me.b || o.file != me.file || o.line != me.line)) {
      EmuError *e = S.err;
      e->kind = EMU_ERR_WARP;
      e->file = me.file;
      e->line = me.line;
      set_thread_of(e, S.cur);
      char mine[128];
      snprintf(mine, sizeof mine, "%s", is_collective(me.op) ? ptx_name(me.op, me.b) : warp_name(me.op));
      snprintf(e->message, sizeof e->message,
               "warp instruction mismatch: thread (%u,%u,%u) executes %s at %s:%d while lane %d, thread (%u,%u,%u), "
               "executes %s at %s:%d; a .sync.aligned instruction must be executed by all 32 lanes of the warp "
               "together, at the same instruction with the same qualifiers",
               me.tid.x, me.tid.y, me.tid.z, mine, me.file, me.line, lane, o.tid.x, o.tid.y, o.tid.z,
               is_collective(o.op) ? ptx_name(o.op, o.b) : warp_name(o.op), o.file, o.line);
      return;
    }
    bool is_shfl = me.op >= EMU_W_SHFL_IDX && me.op <= EMU_W_SHFL_XOR;
    if (o.op != me.op || o.mask != me.mask || o.size != me.size || (is_shfl && o.width != me.width)) {
      EmuError *e = S.err;
      e->kind = EMU_ERR_WARP;
      e->file = me.file;
      e->line = me.line;
      set_thread_of(e, S.cur);
      snprintf(e->message, sizeof e->message,
               "warp op mismatch: thread (%u,%u,%u) calls %s(mask=0x%08x, width=%d, %d-byte value) at %s:%d while "
               "lane %d, thread (%u,%u,%u), calls %s(mask=0x%08x, width=%d, %d-byte value) at %s:%d",
               me.tid.x, me.tid.y, me.tid.z, warp_name(me.op), me.mask, me.width, me.size, me.file, me.line, lane,
               o.tid.x, o.tid.y, o.tid.z, warp_name(o.op), o.mask, o.width, o.size, o.file, o.line);
      return;
    }
  }
  if (collective) {
    const void *in[32];
    void *out[32];
    for (int lane = 0; lane < 32; ++lane) {
      in[lane] = S.thr[base + lane].cin;
      out[lane] = S.thr[base + lane].cout;
    }
    ptx_complete(me.op, me.b, in, out);
    for (int lane = 0; lane < 32; ++lane) S.thr[base + lane].state = TS_READY;
    S.n_warp -= 32;
    S.n_ready += 32;
    return;
  }
  const unsigned long long poison = ~0ull; // what an inactive source lane yields: NaN / -1
  unsigned long long ballot = 0, match_val = 0;
  unsigned int red_u = 0;
  int red_i = 0;
  bool first = true;
  for (int lane = 0; lane < 32; ++lane) {
    if (!((part >> lane) & 1)) continue;
    const Thr &o = S.thr[base + lane];
    if (o.val) ballot |= 1ull << lane;
    unsigned int u = (unsigned int)o.val;
    int si = (int)u;
    if (first) {
      red_u = u;
      red_i = si;
      first = false;
      continue;
    }
    switch (me.op) {
    case EMU_W_REDUCE_ADD: red_u += u; break;
    case EMU_W_REDUCE_MIN_U: red_u = u < red_u ? u : red_u; break;
    case EMU_W_REDUCE_MAX_U: red_u = u > red_u ? u : red_u; break;
    case EMU_W_REDUCE_MIN_I: red_i = si < red_i ? si : red_i; break;
    case EMU_W_REDUCE_MAX_I: red_i = si > red_i ? si : red_i; break;
    case EMU_W_REDUCE_AND: red_u &= u; break;
    case EMU_W_REDUCE_OR: red_u |= u; break;
    case EMU_W_REDUCE_XOR: red_u ^= u; break;
    default: break;
    }
  }
  (void)match_val;
  // Shuffle lane arithmetic follows PTX shfl.sync: segmask = ~(width-1), clamp = width-1 (0 for up).
  int segmask = (32 - me.width) & 31;
  for (int lane = 0; lane < 32; ++lane) {
    if (!((part >> lane) & 1)) continue;
    Thr &o = S.thr[base + lane];
    unsigned long long r = 0;
    int bval = o.b & 31;
    int minLane = lane & segmask;
    switch (me.op) {
    case EMU_W_SHFL_IDX:
    case EMU_W_SHFL_UP:
    case EMU_W_SHFL_DOWN:
    case EMU_W_SHFL_XOR: {
      int cval = me.op == EMU_W_SHFL_UP ? 0 : 31;
      int maxLane = minLane | (cval & ~segmask);
      int j;
      bool ok;
      if (me.op == EMU_W_SHFL_UP) {
        j = lane - bval;
        ok = j >= maxLane;
      } else if (me.op == EMU_W_SHFL_DOWN) {
        j = lane + bval;
        ok = j <= maxLane;
      } else if (me.op == EMU_W_SHFL_XOR) {
        j = lane ^ bval;
        ok = j <= maxLane;
      } else {
        j = minLane | (bval & ~segmask);
        ok = j <= maxLane;
      }
      if (!ok) j = lane;
      r = any_lane_poison(j, base, part) ? poison : S.thr[base + j].val;
      break;
    }
    case EMU_W_BALLOT: r = ballot; break;
    case EMU_W_ANY: r = ballot != 0; break;
    case EMU_W_ALL: r = (ballot & part) == part; break;
    case EMU_W_MATCH_ANY: {
      unsigned long long m = 0;
      for (int k = 0; k < 32; ++k)
        if (((part >> k) & 1) && S.thr[base + k].val == o.val) m |= 1ull << k;
      r = m;
      break;
    }
    case EMU_W_REDUCE_MIN_I:
    case EMU_W_REDUCE_MAX_I: r = (unsigned int)red_i; break;
    case EMU_W_REDUCE_ADD:
    case EMU_W_REDUCE_MIN_U:
    case EMU_W_REDUCE_MAX_U:
    case EMU_W_REDUCE_AND:
    case EMU_W_REDUCE_OR:
    case EMU_W_REDUCE_XOR: r = red_u; break;
    default: r = 0; break;
    }
    o.res = r;
  }
  for (int lane = 0; lane < 32; ++lane) {
    if (!((part >> lane) & 1)) continue;
    S.thr[base + lane].state = TS_READY;
    S.n_warp--;
    S.n_ready++;
  }
}

int barrier(int op, int pred, const char *file, int line) {
  Thr &th = S.thr[S.cur];
  th.state = TS_BAR;
  th.op = op;
  th.pred = pred != 0;
  th.file = file;
  th.line = line;
  S.n_bar++;
  yield_to_scheduler();
  return th.bres;
}

} // namespace

void fault_record(int signo, const char *addr, int access) {
  EmuError *e = S.err;
  e->kind = EMU_ERR_FAULT;
  e->access = access;
  e->signo = signo;
  e->addr = (unsigned long long)(uintptr_t)addr;
  set_thread_of(e, S.cur);
  if (in_dyn_smem_guard(addr)) {
    e->region = EMU_REGION_DYN_SMEM;
    e->region_offset = (unsigned long long)(addr - __emu_dyn_smem);
    return;
  }
  size_t ps = page_size();
  for (Fiber *f : S.fibers)
    if (addr >= f->map && addr < f->map + ps) {
      e->region = EMU_REGION_STACK;
      return;
    }
}

} // namespace emu

using namespace emu;

namespace emu {
namespace {
unsigned long long rendezvous(int kind, unsigned int mask, unsigned long long value, int b, int width, int size,
                              const char *file, int line);
}
} // namespace emu

/* ---- entry points called by kernels (through shim.h) ---- */

extern "C" void __emu_syncthreads(const char *file, int line) { barrier(EMU_B_SYNC, 0, file, line); }

extern "C" int __emu_syncthreads_op(int op, int pred, const char *file, int line) {
  return barrier(op, pred, file, line);
}

extern "C" unsigned long long __emu_warp_op(int kind, unsigned int mask, unsigned long long value, int b, int width,
                                            int size, const char *file, int line) {
  int lane = S.cur & 31;
  if (!((mask >> lane) & 1))
    fail_current(EMU_ERR_WARP, file, line, "%s(mask=0x%08x) called by lane %d, which is not in its own mask",
              warp_name(kind), mask, lane);
  bool is_shfl = kind >= EMU_W_SHFL_IDX && kind <= EMU_W_SHFL_XOR;
  if (is_shfl && (width < 1 || width > 32 || (width & (width - 1))))
    fail_current(EMU_ERR_WARP, file, line, "%s: width=%d is not a power of two in [1, 32]", warp_name(kind), width);
  return rendezvous(kind, mask, value, b, is_shfl ? width : 32, size, file, line);
}

namespace emu {
namespace {
/* The running thread waits in warp op `kind` until every lane of `mask` waits in one; the last to arrive
 * computes all results (complete_warp_op). Returns the caller's result. */
unsigned long long rendezvous(int kind, unsigned int mask, unsigned long long value, int b, int width, int size,
                              const char *file, int line) {
  int t = S.cur;
  Thr &th = S.thr[t];
  int base = t & ~31;
  th.state = TS_WARP;
  th.op = kind;
  th.mask = mask;
  th.val = value;
  th.b = b;
  th.width = width;
  th.size = size;
  th.file = file;
  th.line = line;
  S.n_warp++;
  // Lanes past the end of a partial last warp do not exist; they are not waited for.
  int exist = S.n - base < 32 ? S.n - base : 32;
  unsigned int part = mask & (exist == 32 ? 0xffffffffu : ((1u << exist) - 1));
  bool all_here = true;
  for (int l = 0; l < 32 && all_here; ++l)
    if (((part >> l) & 1) && (S.thr[base + l].state != TS_WARP || S.thr[base + l].op == EMU_W_ACTIVEMASK))
      all_here = false;
  if (all_here) {
    complete_warp_op(base, part, th);
    if (S.err->kind) abort_launch();
  }
  yield_to_scheduler(); // even the last lane yields, so that resumption follows the thread order
  return th.res;
}
} // namespace

int current_thread() { return S.cur; }

void warp_collective(int kind, int variant, const void *in, void *out, const char *file, int line) {
  int t = S.cur;
  int base = t & ~31;
  if (S.n - base < 32)
    fail_current(EMU_ERR_WARP, file, line,
                 "%s needs all 32 lanes of a warp, but the last warp of this %d-thread block has only %d "
                 "(make the block size a multiple of 32)",
                 ptx_name(kind, variant), S.n, S.n - base);
  Thr &th = S.thr[t];
  th.cin = in;
  th.cout = out;
  rendezvous(kind, 0xffffffffu, 0, variant, 32, 0, file, line);
}
} // namespace emu

/* Lanes do not run in lock-step here, so "the lanes active now" is modelled as "the lanes that reach this
 * __activemask() together": the caller waits until no lane of its warp can run any more (each has exited
 * or waits somewhere), then gets the mask of the lanes waiting at the same call. */
extern "C" unsigned int __emu_activemask(const char *file, int line) {
  Thr &th = S.thr[S.cur];
  th.state = TS_WARP;
  th.op = EMU_W_ACTIVEMASK;
  th.mask = 0;
  th.file = file;
  th.line = line;
  S.n_warp++;
  S.activemask_pending = true;
  yield_to_scheduler();
  return (unsigned int)th.res;
}

extern "C" long long __emu_clock64(void) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

extern "C" void __emu_trap(const char *file, int line) {
  fail_current(EMU_ERR_TRAP, file, line, "__trap() called at %s:%d", file, line);
}

extern "C" void __emu_assert_fail(const char *expr, const char *file, unsigned int line, const char *func) noexcept {
  fail_current(EMU_ERR_ASSERT, file, (int)line, "assertion `%s` failed in %s (%s:%u)", expr, func, file, line);
}

/* ---- entry points called by the Python launcher ---- */

extern "C" int emu_abi_version(void) { return GPUCNN_EMU_ABI; }

extern "C" int emu_launch(const EmuLaunch *L, EmuError *err) {
  err->kind = EMU_OK;
  err->message[0] = 0;
  err->file = nullptr;
  err->line = 0;
  err->region = EMU_REGION_UNKNOWN;
  err->access = 0;
  S.L = L;
  S.err = err;
  unsigned bx = L->block[0], by = L->block[1], bz = L->block[2];
  S.n = (int)(bx * by * bz);
  S.thr.assign(S.n, Thr());
  S.perm.resize(S.n);
  for (int t = 0; t < S.n; ++t) {
    S.thr[t].tid.x = t % bx;
    S.thr[t].tid.y = t / bx % by;
    S.thr[t].tid.z = t / (bx * by);
    S.perm[t] = L->order == EMU_ORDER_REVERSE ? S.n - 1 - t : t;
  }
  __emu_blockDim = uint3{bx, by, bz};
  __emu_gridDim = uint3{L->grid[0], L->grid[1], L->grid[2]};
  size_t want = L->stack_bytes ? (size_t)L->stack_bytes : 64 * 1024;
  if (want != S.stack_bytes) { // all fibers are parked between launches
    for (Fiber *f : S.fibers) fiber_free(f);
    S.fibers.clear();
    S.idle.clear();
    S.stack_bytes = want;
  }
  __emu_dyn_smem = dyn_smem_base(L->dyn_smem);
  if (!__emu_dyn_smem) {
    err->kind = EMU_ERR_INTERNAL;
    snprintf(err->message, sizeof err->message, "cannot provide %llu bytes of dynamic shared memory",
             L->dyn_smem);
    return err->kind;
  }
  ptx_launch(L, __emu_dyn_smem, S.n);
  if (!faults_arm(err)) return err->kind;
  if (sigsetjmp(*fault_jump_buffer(), 1) == 0) run_grid();
  faults_disarm();
  g_in_fiber = 0;
  if (err->kind != EMU_OK) reset_busy_fibers();
  fflush(stdout); // kernel printf output appears before Python continues
  return err->kind;
}
