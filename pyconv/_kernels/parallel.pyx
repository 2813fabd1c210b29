"""A parallel for whose caller never waits for a thread that has not started (see parallel.pxd).

The pool: worker threads started on first use (num_threads - 1 of them, more
when a later call asks for more), each spinning briefly after a job and then
sleeping on a condition variable.  A job is published with a new generation
number; tasks are claimed from one 64-bit counter holding (generation, next
task).  The job's descriptor is written while that counter is closed and
checked seqlock fashion by the claim itself, so a worker that wakes late
cannot claim a task of a job other than the one it read, and a worker that
claimed nothing never touches the caller's context (the memory-ordering
argument is in the C code below).  Tasks are claimed in runs, guided: half of an even share of what is
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
    #define PYCONV_HAVE_POOL 1
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

    /* Low half of the claim word of a job being written: above every task count
       (a pool job has fewer than 0x7fffffff tasks), so nothing can be claimed. */
    #define PYCONV_CLOSED 0xffffffffULL

    /* Memory ordering (C11).  The job descriptor (function, context, tasks,
       threads) lives in the pool, which is never freed, and is read by workers
       without a lock, seqlock fashion; the claim word (generation << 32 | next
       task) is both the sequence number and the only way into a job.

       Caller of job g (holding job_lock):
         C1 claim = g << 32 | CLOSED        (relaxed)
         C2 release fence
         C3 function, context, tasks, threads, done = 0   (relaxed stores)
         C4 claim = g << 32                 (release)
         C5 published = g; wake sleepers    (seq_cst)
         C6 claim and run tasks like a worker, then wait for done >= tasks (acquire)
       Worker:
         W1 c = claim (acquire); give up if its low half is CLOSED
         W2 function, context, tasks, threads  (relaxed loads)
         W3 acquire fence
         W4 CAS claim c -> c + count, only if c's generation is c's and next < tasks;
            on success run tasks [next, next + count), then done += count (release)

       (a) If W1 read g's C4 (or a CAS after it) W2 reads g's fields or later
       ones.  If any W2 load reads a store C3 of a later job h, h's C2 fence
       synchronizes with W3, so h's C1 happens before W4 and W4 (coherence)
       reads claim at h's C1 or later: a different generation, the CAS fails.
       So a successful W4 saw exactly the descriptor of the job it claims from.
       (b) Tasks are handed out only by successful CASes of one job's counter,
       each moving next forward, and next never passes the job's own tasks.
       (c) The context is used only inside a claimed run, and done counts only
       finished runs: the caller of g sees done >= tasks only after every run
       of g has finished, and that acquire load reads the release sequence of
       every done += count, so the tasks' writes are visible when it returns.
       A worker that has claimed nothing touches only the pool's own fields.
       Claims of g total exactly tasks, so no done += count of g can come after
       g's caller saw them all, nor after the next job's done = 0.
       (d) The caller waits on done only, i.e. only for runs already claimed.
       Generations are 32 bits: a worker would have to stall between W1 and W4
       for 2^32 jobs for its CAS to match a reused claim word. */
    static struct {
        pthread_mutex_t job_lock;       /* held by the caller of the job in progress */
        pthread_mutex_t sleep_lock;     /* with wake: sleeping workers */
        pthread_cond_t wake;
        int workers;                    /* worker threads started (indices 1..workers) */
        atomic_uint published;          /* generation of the last job published: wakes workers */
        atomic_int sleepers;
        /* the descriptor of the current job; see the memory ordering above */
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

    /* Claims and runs tasks of the job whose claim word was `claim` (W1) and whose
       descriptor is function, context, tasks, threads (W2, then W3's fence) until
       none are left.  Each claim takes half of an even share of what is left, so
       a thread that runs slowly (just woken, its core still clocked down, or
       preempted) holds little of the work near the end, which is what the caller
       waits for. */
    static void pyconv_run_claims(unsigned long long claim, pyconv_task_function function, void *context,
                                  long long tasks, int threads, int thread)
    {
        unsigned long long generation = claim >> 32;
        for (;;) {
            long long next = (long long)(claim & 0xffffffffu);
            if ((claim >> 32) != generation || next >= tasks)
                return;
            long long count = (tasks - next) / (2LL * threads);
            if (count < 1) count = 1;
            if (atomic_compare_exchange_weak_explicit(&pyconv_pool.claim, &claim, claim + (unsigned long long)count,
                                                      memory_order_acq_rel, memory_order_relaxed)) {
                for (ptrdiff_t task = (ptrdiff_t)next; task < (ptrdiff_t)(next + count); task++)
                    function(context, task, thread);
                atomic_fetch_add_explicit(&pyconv_pool.done, count, memory_order_release);
                claim += (unsigned long long)count;   /* a guess; the CAS corrects it */
            }
        }
    }

    /* A worker's part in the job being published, if any (W1-W4). */
    static void pyconv_join_job(int thread)
    {
        unsigned long long claim = atomic_load_explicit(&pyconv_pool.claim, memory_order_acquire);
        if ((claim & 0xffffffffu) == PYCONV_CLOSED) return;   /* being written: not this one's job */
        pyconv_task_function function = atomic_load_explicit(&pyconv_pool.function, memory_order_relaxed);
        void *context = atomic_load_explicit(&pyconv_pool.context, memory_order_relaxed);
        long long tasks = atomic_load_explicit(&pyconv_pool.tasks, memory_order_relaxed);
        int threads = atomic_load_explicit(&pyconv_pool.threads, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        /* a job for fewer threads leaves this one out (a thread count read from
           another job is caught by the claim, like the other fields) */
        if (thread < threads)
            pyconv_run_claims(claim, function, context, tasks, threads, thread);
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
            pyconv_join_job(thread);
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
        unsigned long long open = (unsigned long long)generation << 32;
        /* C1-C5 of the memory ordering above */
        atomic_store_explicit(&pyconv_pool.claim, open | PYCONV_CLOSED, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        atomic_store_explicit(&pyconv_pool.function, function, memory_order_relaxed);
        atomic_store_explicit(&pyconv_pool.context, context, memory_order_relaxed);
        atomic_store_explicit(&pyconv_pool.tasks, tasks, memory_order_relaxed);
        atomic_store_explicit(&pyconv_pool.threads, threads, memory_order_relaxed);
        atomic_store_explicit(&pyconv_pool.done, 0, memory_order_relaxed);
        atomic_store_explicit(&pyconv_pool.claim, open, memory_order_release);
        atomic_store(&pyconv_pool.published, generation);
        if (atomic_load(&pyconv_pool.sleepers) > 0) {
            pthread_mutex_lock(&pyconv_pool.sleep_lock);
            pthread_mutex_unlock(&pyconv_pool.sleep_lock);
            pthread_cond_broadcast(&pyconv_pool.wake);
        }
        /* C6: the caller's own claims, with the descriptor it wrote */
        pyconv_run_claims(open, function, context, tasks, threads, 0);
        while (atomic_load_explicit(&pyconv_pool.done, memory_order_acquire) < tasks) PYCONV_RELAX();
        pthread_mutex_unlock(&pyconv_pool.job_lock);
    }
    #else
    #define PYCONV_HAVE_POOL 0
    static void pyconv_parallel_for(pyconv_task_function function, void *context, ptrdiff_t tasks, int threads)
    {
        (void)threads;
        for (ptrdiff_t task = 0; task < tasks; task++) function(context, task, 0);
    }
    #endif
    """
    ctypedef void (*c_task_function "pyconv_task_function")(void* context, Py_ssize_t task, int thread) noexcept nogil
    void pyconv_parallel_for(c_task_function function, void* context, Py_ssize_t tasks, int threads) noexcept nogil
    int PYCONV_HAVE_POOL


def pool_available():
    """True if the kernels run their tasks on a thread pool (built with pthreads), else on the calling thread."""
    return bool(PYCONV_HAVE_POOL)


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


cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <intrin.h>
    static long long pyconv_test_add(long long *counter, long long value)
    {
        return _InterlockedExchangeAdd64(counter, value) + value;
    }
    #else
    static long long pyconv_test_add(long long *counter, long long value)
    {
        return __atomic_add_fetch(counter, value, __ATOMIC_RELAXED);
    }
    #endif
    """
    long long pyconv_test_add(long long* counter, long long value) noexcept nogil


cdef struct _StressJob:
    long long kind          # 1 for _stress_a's jobs, 2 for _stress_b's
    long long job
    long long tasks
    int threads
    long long* counts       # runs per task
    long long* job_of       # job that ran each task
    long long* errors       # tasks run with the wrong function, context, index or thread


cdef inline void _stress_task(_StressJob* job, long long kind, Py_ssize_t task, int thread) noexcept nogil:
    cdef int spin
    if job.kind != kind or task < 0 or task >= job.tasks or thread < 0 or thread >= job.threads:
        pyconv_test_add(job.errors, 1)
        return
    pyconv_test_add(&job.counts[task], 1)
    job.job_of[task] = job.job
    if task % 5 == 0:   # uneven tasks: claims overlap the end of the job
        for spin in range(<int>(job.job % 64)):
            pyconv_test_add(job.errors, 0)


cdef void _stress_a(void* context, Py_ssize_t task, int thread) noexcept nogil:
    _stress_task(<_StressJob*>context, 1, task, thread)


cdef void _stress_b(void* context, Py_ssize_t task, int thread) noexcept nogil:
    _stress_task(<_StressJob*>context, 2, task, thread)


cdef long long _stress_one(long long job, long long tasks, int num_threads,
                           long long* counts, long long* job_of, long long* errors) noexcept nogil:
    # The descriptor lives in this frame, which the next job's call reuses.
    cdef _StressJob descriptor
    cdef long long task, bad = 0
    descriptor.kind = 1 + job % 2
    descriptor.job = job
    descriptor.tasks = tasks
    descriptor.threads = num_threads if num_threads < tasks else <int>tasks
    if descriptor.threads < 1:
        descriptor.threads = 1
    descriptor.counts = counts
    descriptor.job_of = job_of
    descriptor.errors = errors
    parallel_for(_stress_a if descriptor.kind == 1 else _stress_b, &descriptor, tasks, num_threads)
    for task in range(tasks):
        if pyconv_test_add(&counts[task], 0) != 1 or job_of[task] != job:
            bad += 1
        pyconv_test_add(&counts[task], -pyconv_test_add(&counts[task], 0))
        job_of[task] = -1
    return bad


def run_stress(long long jobs, int num_threads, long long seed=0):
    """For tests: ``jobs`` back-to-back jobs of 1..97 tasks each, alternating two task functions
    with per-job contexts on the stack; returns (tasks not run exactly once by their own job,
    tasks run with the wrong function, context, index or thread)."""
    import numpy as np
    counts = np.zeros(128, dtype=np.int64)
    job_of = np.full(128, -1, dtype=np.int64)
    errors = np.zeros(1, dtype=np.int64)
    cdef long long[::1] c = counts
    cdef long long[::1] o = job_of
    cdef long long[::1] e = errors
    cdef long long job, tasks, bad = 0
    cdef unsigned long long state = <unsigned long long>seed * <unsigned long long>6364136223846793005 + <unsigned long long>1442695040888963407
    with nogil:
        for job in range(jobs):
            state = state * <unsigned long long>6364136223846793005 + <unsigned long long>1442695040888963407
            tasks = 1 + <long long>((state >> 33) % 97)
            if (state >> 20) % 4 == 0:
                tasks = 1 + tasks % 3    # some jobs of 1..3 tasks, a few on the pool
            bad += _stress_one(job, tasks, num_threads, &c[0], &o[0], &e[0])
    return bad, int(errors[0])
