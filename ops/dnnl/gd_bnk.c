// gd_bnk.c: batch normalisation kernels for channels-last data, written by
// hand because oneDNN 2.6's NHWC batch normalisation is slow for the narrow
// channel counts of CPU-sized ResNets (measured in docs/benchmarks.md).
// Data is rows x C (rows = N * Spatial), channels contiguous. Statistics are
// accumulated in double per OpenMP thread over contiguous blocks of rows and
// reduced in thread order, so results are deterministic for a thread count.
// The inner loops run over channels and vectorise; target_clones builds an
// AVX-512 and an AVX2 variant next to the baseline one.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "gd.h"

#define GD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// Per-thread partial sums: at most this many threads.
enum { GD_BNK_MAX_THREADS = 256 };

static void row_range(long rows, int t, int nt, long *lo, long *hi) {
	long chunk = rows / nt, rem = rows % nt;
	*lo = t * chunk + (t < rem ? t : rem);
	*hi = *lo + chunk + (t < rem ? 1 : 0);
}

// The statistics loops keep their double accumulators in registers: the
// channels are taken in blocks of 32 (then 16, 8 and one at a time), and
// each block's sums run over all the thread's rows in local
// arrays of constant size, which the compiler keeps in vector registers.
// Summing into the caller's arrays row after row instead made every row
// wait for the previous row's stores, and with the threads' partial sums
// side by side in one allocation, cores invalidated each other's cache
// lines on every row (the slow processes of docs/benchmarks.md).
//
// SUMS_SHIFTED(B) defines sums_shifted_B: over rows [lo, hi) and channels
// [k0, k0 + B), s1 = sum(x - s) and s2 = sum((x - s)^2), where s is the
// shift (the first row): the shifted one-pass variance stays accurate when
// |mean| >> std.
#define SUMS_SHIFTED(B)                                                                              \
	GD_CLONES static void sums_shifted_##B(const float *x, int c, long lo, long hi, int k0,        \
		const float *shift, double *s1, double *s2) {                                              \
		double a1[B] = {0}, a2[B] = {0};                                                           \
		float sh[B];                                                                               \
		for (int k = 0; k < B; k++) sh[k] = shift[k0 + k];                                         \
		for (long r = lo; r < hi; r++) {                                                           \
			const float *xr = x + r * c + k0;                                                      \
			for (int k = 0; k < B; k++) {                                                          \
				double d = (double)xr[k] - (double)sh[k];                                          \
				a1[k] += d;                                                                        \
				a2[k] += d * d;                                                                    \
			}                                                                                      \
		}                                                                                          \
		for (int k = 0; k < B; k++) {                                                              \
			s1[k0 + k] = a1[k];                                                                    \
			s2[k0 + k] = a2[k];                                                                    \
		}                                                                                          \
	}
SUMS_SHIFTED(32)
SUMS_SHIFTED(16)
SUMS_SHIFTED(8)
SUMS_SHIFTED(1)

// sums_shifted writes, per channel, s1 = sum(x - s) and s2 = sum((x - s)^2)
// over rows [lo, hi).
static void sums_shifted(const float *x, int c, long lo, long hi, const float *shift, double *s1,
	double *s2) {
	int k0 = 0;
	for (; k0 + 32 <= c; k0 += 32) sums_shifted_32(x, c, lo, hi, k0, shift, s1, s2);
	for (; k0 + 16 <= c; k0 += 16) sums_shifted_16(x, c, lo, hi, k0, shift, s1, s2);
	for (; k0 + 8 <= c; k0 += 8) sums_shifted_8(x, c, lo, hi, k0, shift, s1, s2);
	for (; k0 < c; k0++) sums_shifted_1(x, c, lo, hi, k0, shift, s1, s2);
}

// affine writes y = (x - m) * a + b.
GD_CLONES static void affine(const float *x, float *y, int c, long lo, long hi, const float *m,
	const float *a, const float *b) {
	for (long r = lo; r < hi; r++) {
		const float *xr = x + r * c;
		float *yr = y + r * c;
		for (int k = 0; k < c; k++) yr[k] = (xr[k] - m[k]) * a[k] + b[k];
	}
}

// SUMS_BWD(B) defines sums_bwd_B: over rows [lo, hi) and channels
// [k0, k0 + B), sdy = sum(dy) and sdyx = sum(dy * (x - mean)).
#define SUMS_BWD(B)                                                                                  \
	GD_CLONES static void sums_bwd_##B(const float *x, const float *dy, int c, long lo, long hi,   \
		int k0, const float *mean, double *sdy, double *sdyx) {                                    \
		double a1[B] = {0}, a2[B] = {0};                                                           \
		float m[B];                                                                                \
		for (int k = 0; k < B; k++) m[k] = mean[k0 + k];                                           \
		for (long r = lo; r < hi; r++) {                                                           \
			const float *xr = x + r * c + k0, *dr = dy + r * c + k0;                               \
			for (int k = 0; k < B; k++) {                                                          \
				double g = dr[k];                                                                  \
				a1[k] += g;                                                                        \
				a2[k] += g * ((double)xr[k] - (double)m[k]);                                       \
			}                                                                                      \
		}                                                                                          \
		for (int k = 0; k < B; k++) {                                                              \
			sdy[k0 + k] = a1[k];                                                                   \
			sdyx[k0 + k] = a2[k];                                                                  \
		}                                                                                          \
	}
SUMS_BWD(32)
SUMS_BWD(16)
SUMS_BWD(8)
SUMS_BWD(1)

// sums_bwd writes, per channel, sdy = sum(dy) and sdyx = sum(dy * (x - mean))
// over rows [lo, hi).
static void sums_bwd(const float *x, const float *dy, int c, long lo, long hi, const float *mean,
	double *sdy, double *sdyx) {
	int k0 = 0;
	for (; k0 + 32 <= c; k0 += 32) sums_bwd_32(x, dy, c, lo, hi, k0, mean, sdy, sdyx);
	for (; k0 + 16 <= c; k0 += 16) sums_bwd_16(x, dy, c, lo, hi, k0, mean, sdy, sdyx);
	for (; k0 + 8 <= c; k0 += 8) sums_bwd_8(x, dy, c, lo, hi, k0, mean, sdy, sdyx);
	for (; k0 < c; k0++) sums_bwd_1(x, dy, c, lo, hi, k0, mean, sdy, sdyx);
}

// dx = a * dy + b * (x - m) + c0: the training-mode gradient per channel.
GD_CLONES static void bwd_apply(const float *x, const float *dy, float *dx, int c, long lo, long hi,
	const float *m, const float *a, const float *b, const float *c0) {
	for (long r = lo; r < hi; r++) {
		const float *xr = x + r * c, *dr = dy + r * c;
		float *o = dx + r * c;
		for (int k = 0; k < c; k++) o[k] = a[k] * dr[k] + b[k] * (xr[k] - m[k]) + c0[k];
	}
}

// gd_bn is one batch normalisation shape with its scratch memory.
struct gd_bn {
	gd_ctx *ctx;
	long rows; // N * Spatial
	int c, nt;
	int cs; // c rounded up to whole cache lines: one thread's partial sums never share a line with another's
	float eps;
	double *acc; // 2 * nt * cs per-thread partial sums, then 2 * cs totals (64-byte aligned)
	float *coef; // 4 * c per-channel coefficients
};

dnnl_status_t gd_bn_create(gd_bn **out, gd_ctx *ctx, int n, int spatial, int ch, float eps) {
	*out = NULL;
	gd_bn *bn = calloc(1, sizeof(gd_bn));
	if (!bn) {
		ctx->where = "allocate batch norm";
		return dnnl_out_of_memory;
	}
	bn->ctx = ctx;
	bn->rows = (long)n * spatial;
	bn->c = ch;
	bn->eps = eps;
	bn->nt = ctx->threads;
	if (bn->nt > GD_BNK_MAX_THREADS) bn->nt = GD_BNK_MAX_THREADS;
	if (bn->rows < 64 || bn->nt < 1) bn->nt = 1; // tiny 1-D cases: not worth waking threads
	bn->cs = (ch + 7) & ~7;
	size_t accBytes = sizeof(double) * (2 * (size_t)bn->nt * bn->cs + 2 * (size_t)bn->cs);
	if (posix_memalign((void **)&bn->acc, 64, accBytes) != 0) bn->acc = NULL;
	bn->coef = malloc(sizeof(float) * 4 * (size_t)ch);
	if (!bn->acc || !bn->coef) {
		gd_bn_destroy(bn);
		ctx->where = "allocate batch norm scratch";
		return dnnl_out_of_memory;
	}
	*out = bn;
	return dnnl_success;
}

void gd_bn_destroy(gd_bn *bn) {
	if (!bn) return;
	free(bn->acc);
	free(bn->coef);
	free(bn);
}

// reduce adds the nt per-thread arrays of acc (nt rows of stride cs) into
// out (c), in thread order.
static void reduce(const double *acc, int nt, int c, int cs, double *out) {
	memset(out, 0, sizeof(double) * c);
	for (int t = 0; t < nt; t++)
		for (int k = 0; k < c; k++) out[k] += acc[(size_t)t * cs + k];
}

static void bn_sums(gd_bn *bn, const float *x, const float *shift, double *s1, double *s2);

dnnl_status_t gd_bn_forward_train(gd_bn *bn, float *x, float *gamma, float *beta, float *y,
	float *mean, float *var) {
	gd_set_threads(bn->ctx);
	const int c = bn->c, nt = bn->nt;
	const long rows = bn->rows;
	const int cs = bn->cs;
	double *s1 = bn->acc + (size_t)2 * nt * cs, *s2 = s1 + cs;
	const float *shift = x; // the first row
	bn_sums(bn, x, shift, s1, s2);
	float *a = bn->coef;
	for (int k = 0; k < c; k++) {
		double m = s1[k] / rows;
		double v = s2[k] / rows - m * m;
		if (v < 0) v = 0;
		mean[k] = (float)(m + shift[k]);
		var[k] = (float)v;
		a[k] = (float)(gamma[k] / sqrt(v + (double)bn->eps));
	}
#pragma omp parallel num_threads(nt)
	{
		int t = omp_get_thread_num();
		long lo, hi;
		row_range(rows, t, nt, &lo, &hi);
		affine(x, y, c, lo, hi, mean, a, beta);
	}
	return dnnl_success;
}

dnnl_status_t gd_bn_forward_infer(gd_bn *bn, float *x, float *gamma, float *beta, float *mean,
	float *var, float *y) {
	gd_set_threads(bn->ctx);
	const int c = bn->c, nt = bn->nt;
	const long rows = bn->rows;
	float *a = bn->coef;
	for (int k = 0; k < c; k++) a[k] = (float)(gamma[k] / sqrt((double)var[k] + (double)bn->eps));
#pragma omp parallel num_threads(nt)
	{
		int t = omp_get_thread_num();
		long lo, hi;
		row_range(rows, t, nt, &lo, &hi);
		affine(x, y, c, lo, hi, mean, a, beta);
	}
	return dnnl_success;
}

// bn_sums writes s1 = sum(x - shift), s2 = sum((x - shift)^2) per channel:
// each thread sums its rows into its own partials, then they are added in
// thread order.
static void bn_sums(gd_bn *bn, const float *x, const float *shift, double *s1, double *s2) {
	const int c = bn->c, nt = bn->nt, cs = bn->cs;
	const long rows = bn->rows;
	double *a1 = bn->acc, *a2 = a1 + (size_t)nt * cs;
#pragma omp parallel num_threads(nt)
	{
		int t = omp_get_thread_num();
		long lo, hi;
		row_range(rows, t, nt, &lo, &hi);
		sums_shifted(x, c, lo, hi, shift, a1 + (size_t)t * cs, a2 + (size_t)t * cs);
	}
	reduce(a1, nt, c, cs, s1);
	reduce(a2, nt, c, cs, s2);
}

// bn_grad_sums writes sdy = sum(dy), sdyx = sum(dy * (x - mean)) per channel.
static void bn_grad_sums(gd_bn *bn, const float *x, const float *mean, const float *dy, double *sdy, double *sdyx) {
	const int c = bn->c, nt = bn->nt, cs = bn->cs;
	const long rows = bn->rows;
	double *a1 = bn->acc, *a2 = a1 + (size_t)nt * cs;
#pragma omp parallel num_threads(nt)
	{
		int t = omp_get_thread_num();
		long lo, hi;
		row_range(rows, t, nt, &lo, &hi);
		sums_bwd(x, dy, c, lo, hi, mean, a1 + (size_t)t * cs, a2 + (size_t)t * cs);
	}
	reduce(a1, nt, c, cs, sdy);
	reduce(a2, nt, c, cs, sdyx);
}

// bn_dx writes dx = gamma*inv*(dy - sdy/m - xhat*dgamma/m) with inv =
// 1/sqrt(var + eps), xhat = (x - mean)*inv and dgamma = sdyx*inv, from sums
// over m values per channel; it also writes dgamma and dbeta (= sdy) when
// they are not NULL, and skips dx when it is NULL.
static void bn_dx(gd_bn *bn, const float *x, const float *gamma, const float *mean, const float *var,
	const float *dy, const double *sdy, const double *sdyx, long m, float *dx, float *dgamma, float *dbeta) {
	const int c = bn->c, nt = bn->nt;
	const long rows = bn->rows;
	float *ca = bn->coef, *cb = ca + c, *cc = cb + c;
	for (int k = 0; k < c; k++) {
		double inv = 1.0 / sqrt((double)var[k] + (double)bn->eps);
		double dg = sdyx[k] * inv; // sum dy * xhat
		if (dbeta) dbeta[k] = (float)sdy[k];
		if (dgamma) dgamma[k] = (float)dg;
		double gi = gamma[k] * inv;
		ca[k] = (float)gi;
		cb[k] = (float)(-gi * inv * dg / m);
		cc[k] = (float)(-gi * sdy[k] / m);
	}
	if (!dx) return;
#pragma omp parallel num_threads(nt)
	{
		int t = omp_get_thread_num();
		long lo, hi;
		row_range(rows, t, nt, &lo, &hi);
		bwd_apply(x, dy, dx, c, lo, hi, mean, ca, cb, cc);
	}
}

// Training-mode backward: with M rows, inv = 1/sqrt(var + eps) and
// xhat = (x - mean) * inv, dbeta = sum dy, dgamma = sum dy * xhat and
// dx = gamma * inv * (dy - dbeta / M - xhat * dgamma / M).
dnnl_status_t gd_bn_backward(gd_bn *bn, float *x, float *gamma, float *mean, float *var, float *dy,
	float *dx, float *dgamma, float *dbeta) {
	gd_set_threads(bn->ctx);
	double *sdy = bn->acc + (size_t)2 * bn->nt * bn->cs, *sdyx = sdy + bn->cs;
	bn_grad_sums(bn, x, mean, dy, sdy, sdyx);
	bn_dx(bn, x, gamma, mean, var, dy, sdy, sdyx, bn->rows, dx, dgamma, dbeta);
	return dnnl_success;
}

// The pieces of a synchronised (data-parallel) batch norm: the workers add
// up the sums between the calls.

dnnl_status_t gd_bn_sums(gd_bn *bn, float *x, float *shift, double *s1, double *s2) {
	gd_set_threads(bn->ctx);
	bn_sums(bn, x, shift, s1, s2);
	return dnnl_success;
}

dnnl_status_t gd_bn_grad_sums(gd_bn *bn, float *x, float *mean, float *dy, double *sdy, double *sdyx) {
	gd_set_threads(bn->ctx);
	bn_grad_sums(bn, x, mean, dy, sdy, sdyx);
	return dnnl_success;
}

dnnl_status_t gd_bn_backward_given(gd_bn *bn, float *x, float *gamma, float *mean, float *var, float *dy,
	double *sdy, double *sdyx, long m, float *dx) {
	gd_set_threads(bn->ctx);
	bn_dx(bn, x, gamma, mean, var, dy, sdy, sdyx, m, dx, NULL, NULL);
	return dnnl_success;
}
