"""A parallel for whose caller never waits for a thread that has not started (see parallel.pxd).

The pool: worker threads started on first use (num_threads - 1 of them, more
when a later call asks for more), each spinning briefly after a job and then
sleeping on a condition variable.  A job is published with a new generation
number; tasks are claimed from one 64-bit counter holding (generation, next
task), so a worker that wakes late cannot claim a task of a job it did not
read.  Tasks are claimed in runs, guided: half of an even share of what is
left (few atomic operations on the line both cores write, and little work
held by a slow thread near the end).  The caller claims like any worker
and, once nothing is left to claim, waits only until the runs claimed by
workers have finished.
"""

cdef extern from *:
    """
    #include <stddef.h>
    #include <stdint.h>

    typedef void (*pyconv_task_function)(void *context, ptrdiff_t task, int thread);

    #if (defined(__unix__) || defined(__APPLE__)) && !defined(__STDC_NO_ATOMICS__)
    #include <pthread.h>
    #include <stdatomic.h>
    #include <time.h>

    #if defined(__x86_64__) || defined(__i386__)
    #define PYCONV_RELAX() __builtin_ia32_pause()
    #else
    #define PYCONV_RELAX() ((void)0)
    #endif

    /* How long an idle worker spins before sleeping: long enough for the next
       kernel of a model run, short enough not to keep a core from other
       processes. */
    #define PYCONV_SPIN_NANOSECONDS 200000
    #define PYCONV_MAX_WORKERS 255

    static struct {
        pthread_mutex_t job_lock;       /* held by the caller of the job in progress */
        pthread_mutex_t sleep_lock;     /* with wake: sleeping workers */
        pthread_cond_t wake;
        int workers;                    /* worker threads started (indices 1..workers) */
        atomic_uint published;          /* generation of the current job */
        atomic_int sleepers;
        /* the current job; read by workers only between seeing its generation
           published and claiming one of its tasks */
        _Atomic(pyconv_task_function) function;
        _Atomic(void *) context;
        atomic_llong tasks;
        atomic_int threads;
        _Alignas(64) atomic_ullong claim;   /* generation << 32 | next task (own cache line) */
        _Alignas(64) atomic_llong done;     /* tasks finished (own cache line) */
        char padding[64 - sizeof(atomic_llong)];
    } pyconv_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

    static long long pyconv_now_ns(void)
    {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
    }

    /* The next run of tasks [first, first + count) of job generation `generation`,
       count = 0 when it has none left.  Guided: a claim takes half of an even share
       of what is left, so a thread that runs slowly (just woken, its core still
       clocked down, or preempted) holds little of the work near the end, which is
       what the caller waits for. */
    static ptrdiff_t pyconv_claim(unsigned generation, long long tasks, int threads, ptrdiff_t *first)
    {
        unsigned long long claim = atomic_load_explicit(&pyconv_pool.claim, memory_order_relaxed);
        for (;;) {
            long long next = (long long)(claim & 0xffffffffu);
            if ((unsigned)(claim >> 32) != generation || next >= tasks)
                return 0;
            long long count = (tasks - next) / (2LL * threads);
            if (count < 1) count = 1;
            if (atomic_compare_exchange_weak_explicit(&pyconv_pool.claim, &claim, claim + (unsigned long long)count,
                                                      memory_order_acq_rel, memory_order_relaxed)) {
                *first = (ptrdiff_t)next;
                return (ptrdiff_t)count;
            }
        }
    }

    static void pyconv_run_claimed(unsigned generation, int thread)
    {
        pyconv_task_function function = atomic_load_explicit(&pyconv_pool.function, memory_order_relaxed);
        void *context = atomic_load_explicit(&pyconv_pool.context, memory_order_relaxed);
        long long tasks = atomic_load_explicit(&pyconv_pool.tasks, memory_order_relaxed);
        int threads = atomic_load_explicit(&pyconv_pool.threads, memory_order_relaxed);
        ptrdiff_t first, count;
        while ((count = pyconv_claim(generation, tasks, threads, &first)) > 0) {
            for (ptrdiff_t task = first; task < first + count; task++)
                function(context, task, thread);
            atomic_fetch_add_explicit(&pyconv_pool.done, count, memory_order_release);
        }
    }

    static void *pyconv_worker(void *argument)
    {
        int thread = (int)(intptr_t)argument;
        unsigned seen = atomic_load(&pyconv_pool.published);
        for (;;) {
            unsigned generation;
            long long spin_until = pyconv_now_ns() + PYCONV_SPIN_NANOSECONDS;
            unsigned spins = 0;
            while ((generation = atomic_load(&pyconv_pool.published)) == seen) {
                PYCONV_RELAX();
                if (++spins % 256 || pyconv_now_ns() < spin_until)
                    continue;
                pthread_mutex_lock(&pyconv_pool.sleep_lock);
                atomic_fetch_add(&pyconv_pool.sleepers, 1);
                while (atomic_load(&pyconv_pool.published) == seen)
                    pthread_cond_wait(&pyconv_pool.wake, &pyconv_pool.sleep_lock);
                atomic_fetch_sub(&pyconv_pool.sleepers, 1);
                pthread_mutex_unlock(&pyconv_pool.sleep_lock);
            }
            seen = generation;
            /* a job for fewer threads leaves this one out (checked again by the claim:
               a stale thread count belongs to a finished job, whose tasks are gone) */
            if (thread < atomic_load_explicit(&pyconv_pool.threads, memory_order_relaxed))
                pyconv_run_claimed(generation, thread);
        }
        return NULL;
    }

    /* After fork the child has none of the parent's workers: start afresh. */
    static void pyconv_pool_after_fork(void)
    {
        pthread_mutex_init(&pyconv_pool.job_lock, NULL);
        pthread_mutex_init(&pyconv_pool.sleep_lock, NULL);
        pthread_cond_init(&pyconv_pool.wake, NULL);
        pyconv_pool.workers = 0;
        atomic_store(&pyconv_pool.sleepers, 0);
    }

    static void pyconv_run_inline(pyconv_task_function function, void *context, ptrdiff_t tasks)
    {
        for (ptrdiff_t task = 0; task < tasks; task++) function(context, task, 0);
    }

    static void pyconv_parallel_for(pyconv_task_function function, void *context, ptrdiff_t tasks, int threads)
    {
        static int fork_handler = 0;
        if (threads > PYCONV_MAX_WORKERS + 1) threads = PYCONV_MAX_WORKERS + 1;
        if (threads > tasks) threads = (int)tasks;
        if (threads <= 1 || tasks >= 0x7fffffffLL || pthread_mutex_trylock(&pyconv_pool.job_lock) != 0) {
            pyconv_run_inline(function, context, tasks);
            return;
        }
        if (!fork_handler) fork_handler = pthread_atfork(NULL, NULL, pyconv_pool_after_fork) == 0;
        while (pyconv_pool.workers < threads - 1) {
            pthread_t worker;
            pthread_attr_t attributes;
            int started;
            pthread_attr_init(&attributes);
            pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
            started = pthread_create(&worker, &attributes, pyconv_worker,
                                     (void *)(intptr_t)(pyconv_pool.workers + 1)) == 0;
            pthread_attr_destroy(&attributes);
            if (!started) break;
            pyconv_pool.workers++;
        }
        if (threads > pyconv_pool.workers + 1) threads = pyconv_pool.workers + 1;
        unsigned generation = atomic_load(&pyconv_pool.published) + 1;
        atomic_store_explicit(&pyconv_pool.function, function, memory_order_relaxed);
        atomic_store_explicit(&pyconv_pool.context, context, memory_order_relaxed);
        atomic_store_explicit(&pyconv_pool.tasks, tasks, memory_order_relaxed);
        atomic_store_explicit(&pyconv_pool.threads, threads, memory_order_relaxed);
        atomic_store_explicit(&pyconv_pool.done, 0, memory_order_relaxed);
        atomic_store_explicit(&pyconv_pool.claim, (unsigned long long)generation << 32, memory_order_relaxed);
        atomic_store(&pyconv_pool.published, generation);
        if (atomic_load(&pyconv_pool.sleepers) > 0) {
            pthread_mutex_lock(&pyconv_pool.sleep_lock);
            pthread_mutex_unlock(&pyconv_pool.sleep_lock);
            pthread_cond_broadcast(&pyconv_pool.wake);
        }
        pyconv_run_claimed(generation, 0);
        while (atomic_load_explicit(&pyconv_pool.done, memory_order_acquire) != tasks) PYCONV_RELAX();
        pthread_mutex_unlock(&pyconv_pool.job_lock);
    }
    #else
    static void pyconv_parallel_for(pyconv_task_function function, void *context, ptrdiff_t tasks, int threads)
    {
        (void)threads;
        for (ptrdiff_t task = 0; task < tasks; task++) function(context, task, 0);
    }
    #endif
    """
    ctypedef void (*c_task_function "pyconv_task_function")(void* context, Py_ssize_t task, int thread) noexcept nogil
    void pyconv_parallel_for(c_task_function function, void* context, Py_ssize_t tasks, int threads) noexcept nogil


cdef void parallel_for(task_function function, void* context, Py_ssize_t tasks, int num_threads) noexcept nogil:
    pyconv_parallel_for(<c_task_function>function, context, tasks, num_threads)


cdef struct _Check:
    long long* counts
    int* threads


cdef void _count(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef _Check* check = <_Check*>context
    check.counts[task] += 1
    check.threads[task] = thread


def run_counting(Py_ssize_t tasks, int num_threads):
    """For tests: run ``tasks`` tasks that count their runs; returns (runs per task, thread per task)."""
    import numpy as np
    counts = np.zeros(tasks, dtype=np.int64)
    threads = np.full(tasks, -1, dtype=np.intc)
    cdef long long[::1] c = counts
    cdef int[::1] t = threads
    cdef _Check check
    if tasks:
        check.counts = &c[0]
        check.threads = &t[0]
        with nogil:
            parallel_for(_count, &check, tasks, num_threads)
    return counts, threads
