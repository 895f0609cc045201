//! The thread pool that JIT code calls back into: a parallel-for over work items.
//!
//! Compiled code splits a layer into independent work items (batch × output-channel blocks × row
//! bands) and calls [`kiln_parallel_for`] with a [`Task`] — a native function that runs the items
//! `begin..end` — and an opaque context pointer. The calling thread takes part; the pool's workers
//! take items from a shared counter. Which thread runs which item never changes the result, because
//! every item writes its own outputs and computes them the same way wherever it runs.
//!
//! The pool owns `threads − 1` std threads (the caller is the last one). Workers spin briefly after a
//! job, because the next layer's job usually follows within microseconds, then sleep on a condvar.
//! When several runs share the pool at once, a call that finds the pool busy runs its items on its
//! own thread: no run waits for another, and none can deadlock.
//!
//! The pool never dereferences the context pointer: it only passes it back to the task (as a
//! `usize` while it crosses threads). Its only `unsafe` is the call of the task itself, whose
//! soundness the submitter vouches for ([`ThreadPool::parallel_for`] is an `unsafe fn`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A native work function: runs work items `begin..end` of one layer, with `ctx` the compiled
/// model's context table (buffer base pointers). Unsafe to call: it reads and writes whatever
/// memory `ctx` points at, so only the code that built `ctx` for it can vouch for a call.
pub type Task = unsafe extern "C" fn(ctx: *const u8, begin: u64, end: u64);

/// How long an idle worker polls for the next job before it sleeps (a model's layers follow each
/// other within microseconds; waking a sleeping thread costs tens of them).
const SPIN: Duration = Duration::from_micros(200);

/// One parallel-for in flight: what to run and its own item counters (a worker that wakes late
/// still sees the job it was woken for, whose counter is exhausted, and does nothing).
#[derive(Clone)]
struct Job {
    task: Task,
    /// The context pointer, kept as an address: the pool only hands it back to `task`.
    ctx: usize,
    items: u64,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    /// The next item to hand out.
    next: AtomicU64,
    /// Items finished.
    done: AtomicU64,
}

impl Job {
    /// Runs items from the shared counter until none are left.
    fn work(&self) {
        loop {
            let i = self.counters.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.items {
                return;
            }
            // SAFETY: whoever submitted the job promised (see `ThreadPool::parallel_for`) that
            // `task(ctx, i, i + 1)` is sound for every `i < items` while the call is in progress,
            // and it waits for `done == items` before returning, so `ctx` is still valid here.
            unsafe { (self.task)(self.ctx as *const u8, i, i + 1) };
            // Release: the item's writes happen before the caller sees it counted.
            self.counters.done.fetch_add(1, Ordering::Release);
        }
    }
}

#[derive(Default)]
struct State {
    /// Bumped for every job; workers compare it with the last one they served.
    generation: u64,
    job: Option<Job>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Mirrors `state.generation` so that spinning workers need not take the lock.
    generation: AtomicU64,
    /// Set while one parallel-for owns the workers.
    busy: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock (tasks run outside it), so a poisoned lock
        // still holds a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fixed set of worker threads serving parallel-for calls.
pub struct ThreadPool {
    threads: usize,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.threads)
            .finish()
    }
}

impl ThreadPool {
    /// A pool running work on `threads` threads in all: the caller plus `threads − 1` workers
    /// (`0` counts as 1). Fails only if the operating system refuses to start a thread.
    pub fn new(threads: usize) -> std::io::Result<ThreadPool> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            generation: AtomicU64::new(0),
            busy: AtomicBool::new(false),
        });
        let mut workers = Vec::with_capacity(threads - 1);
        for i in 1..threads {
            let shared = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("kiln-worker-{i}"))
                .spawn(move || worker_loop(&shared))?;
            workers.push(handle);
        }
        Ok(ThreadPool {
            threads,
            shared,
            workers,
        })
    }

    /// The number of threads that run work (workers plus the caller).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The number of hardware threads, or 1 if it cannot be told (the default for `--threads`).
    pub fn available_threads() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Runs `task(ctx, i, i + 1)` for every `i` in `0..items`, spread over the pool, and returns
    /// when all have finished. Runs everything on the calling thread when the pool has one thread,
    /// when there is one item, or when another parallel-for holds the workers.
    ///
    /// # Safety
    /// `task(ctx, begin, end)` must be sound to call, from any thread and concurrently for
    /// disjoint item ranges, for every range within `0..items`, until this call returns.
    pub unsafe fn parallel_for(&self, task: Task, ctx: *const u8, items: u64) {
        if items == 0 {
            return;
        }
        let inline = self.threads == 1
            || items == 1
            || self
                .shared
                .busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err();
        if inline {
            // SAFETY: the caller's contract covers the whole range `0..items`.
            unsafe { task(ctx, 0, items) };
            return;
        }
        let job = Job {
            task,
            ctx: ctx as usize,
            items,
            counters: Arc::new(Counters::default()),
        };
        {
            let mut state = self.shared.lock();
            state.generation += 1;
            state.job = Some(job.clone());
            self.shared
                .generation
                .store(state.generation, Ordering::Release);
        }
        self.shared.wake.notify_all();
        job.work();
        // Wait for items other threads took; each is short (one layer's slice).
        let mut spins = 0u32;
        while job.counters.done.load(Ordering::Acquire) < items {
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        self.shared.lock().job = None;
        self.shared.busy.store(false, Ordering::Release);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.generation.fetch_add(1, Ordering::Release);
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            // A worker that panicked has nothing left to clean up.
            let _ = w.join();
        }
    }
}

/// A worker: waits for a new generation (spinning first, then sleeping), serves its job, repeats.
fn worker_loop(shared: &Shared) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        while shared.generation.load(Ordering::Acquire) == seen && start.elapsed() < SPIN {
            std::hint::spin_loop();
        }
        let job = {
            let mut state = shared.lock();
            while state.generation == seen && !state.shutdown {
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.shutdown {
                return;
            }
            seen = state.generation;
            state.job.clone()
        };
        if let Some(job) = job {
            job.work();
        }
    }
}

/// The parallel-for that JIT code calls: `pool.parallel_for(task, ctx, items)`. Its address is
/// registered with the JIT under the name [`PARALLEL_FOR_SYMBOL`]; the native signature is
/// `(i64 pool, i64 task, i64 ctx, i64 items)` in the platform's C convention.
///
/// # Safety
/// As for [`ThreadPool::parallel_for`]; compiled code calls it with the task and context table the
/// code generator built for each other.
pub unsafe extern "C" fn kiln_parallel_for(
    pool: &ThreadPool,
    task: Task,
    ctx: *const u8,
    items: u64,
) {
    // SAFETY: forwarded contract (see above).
    unsafe { pool.parallel_for(task, ctx, items) };
}

/// The symbol name under which compiled code imports [`kiln_parallel_for`].
pub const PARALLEL_FOR_SYMBOL: &str = "kiln_parallel_for";

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Counts every item it runs in `MARKS` (the context pointer is not needed here).
    unsafe extern "C" fn mark(_ctx: *const u8, begin: u64, end: u64) {
        for i in begin..end {
            MARKS[i as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    static MARKS: [AtomicU32; 1000] = [const { AtomicU32::new(0) }; 1000];

    #[test]
    fn every_item_runs_exactly_once_for_any_thread_count() {
        for threads in [1, 2, 3, 4] {
            let pool = ThreadPool::new(threads).unwrap();
            assert_eq!(pool.threads(), threads);
            for items in [0u64, 1, 2, 7, 1000] {
                MARKS.iter().for_each(|m| m.store(0, Ordering::Relaxed));
                for _ in 0..3 {
                    // SAFETY: `mark` touches only a static, for any range.
                    unsafe { pool.parallel_for(mark, std::ptr::null(), items) };
                }
                for (i, m) in MARKS.iter().enumerate() {
                    let expected = if (i as u64) < items { 3 } else { 0 };
                    assert_eq!(m.load(Ordering::Relaxed), expected, "item {i} of {items}");
                }
            }
        }
    }

    #[test]
    fn concurrent_callers_share_one_pool() {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        unsafe extern "C" fn count(_: *const u8, begin: u64, end: u64) {
            COUNT.fetch_add(end - begin, Ordering::Relaxed);
        }
        let pool = Arc::new(ThreadPool::new(2).unwrap());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        // SAFETY: `count` touches only a static, for any range.
                        unsafe { kiln_parallel_for(&pool, count, std::ptr::null(), 10) };
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // 4 callers × 50 calls × 10 items, whether they ran on the workers or inline.
        assert_eq!(COUNT.load(Ordering::Relaxed), 2000);
    }
}
