// gd_thread.c: binding the compute threads to cores.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <omp.h>
#include "gd.h"

// gd_bind_threads binds thread t of an OpenMP team of c->threads threads,
// started from the calling OS thread, to CPU cpus[t] (n >= c->threads
// entries). libgomp keeps one worker pool per calling OS thread and hands
// thread number t the same worker in every later team from that thread, so
// the binding holds for every later call made from the same OS thread. It
// returns 0, or the first error of pthread_setaffinity_np.
int gd_bind_threads(gd_ctx *c, const int *cpus, int n) {
	if (n < c->threads) return EINVAL;
	int err = 0;
	gd_set_threads(c);
#pragma omp parallel num_threads(c->threads)
	{
		int t = omp_get_thread_num();
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpus[t], &set);
		int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
		if (e != 0) {
#pragma omp critical
			if (err == 0) err = e;
		}
	}
	return err;
}

// gd_thread_affinity writes, for each thread t of a team of c->threads
// threads started from the calling OS thread, the one CPU its affinity
// mask allows, or -1 when the mask allows several (for tests).
void gd_thread_affinity(gd_ctx *c, int *out) {
	gd_set_threads(c);
#pragma omp parallel num_threads(c->threads)
	{
		int t = omp_get_thread_num();
		cpu_set_t set;
		CPU_ZERO(&set);
		out[t] = -1;
		if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) == 0 && CPU_COUNT(&set) == 1) {
			for (int i = 0; i < CPU_SETSIZE; i++)
				if (CPU_ISSET(i, &set)) out[t] = i;
		}
	}
}
