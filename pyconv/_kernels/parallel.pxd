# A parallel for whose caller never waits for a thread that has not started.
#
#     from pyconv._kernels.parallel cimport parallel_for
#
#     cdef void run_task(void* context, Py_ssize_t task, int thread) noexcept nogil: ...
#     parallel_for(run_task, &context, tasks, num_threads)
#
# runs run_task(context, task, thread) once for every task in [0, tasks),
# each on one thread; thread (0 <= thread < num_threads) indexes per-thread
# scratch.  The calling thread works too, claiming tasks from a shared
# counter; pool threads claim what is left when they get a core.  The call
# returns once every task has run, without waiting for a pool thread that
# has not claimed one: on a machine whose cores are busy with other
# processes a sleeping or preempted worker does not stall the call (an
# OpenMP team's end-of-region barrier waits for every member, which on this
# project's shared 2-core machines turned 0.14 ms kernels into 3-30 ms
# ones).  Tasks must be independent; which thread runs a task never changes
# what it computes, so results do not depend on the thread count.
#
# One call at a time uses the pool; a concurrent call (another Python thread
# in a nogil kernel) runs its tasks on its own thread.  Without pthreads
# (or with num_threads 1) every task runs on the calling thread.
ctypedef void (*task_function)(void* context, Py_ssize_t task, int thread) noexcept nogil

cdef void parallel_for(task_function function, void* context, Py_ssize_t tasks, int num_threads) noexcept nogil
