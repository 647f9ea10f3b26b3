// gd_conv.c: 2-D convolution, forward, backward data and backward weights.
// Activations stay NHWC; the primitives choose their weight layout
// (format "any") and the user's OIHW weights are reordered to it per call.
//
// In bfloat16 mode (c->bf16) the primitives read bfloat16 sources, weights
// and output gradients and write float32 outputs, input gradients and weight
// gradients (oneDNN accumulates in float32). The caller's float32 NHWC x and
// dy are converted on entry into the context's shared buffers (gd.h), NHWC
// bfloat16: x into GD_BUF_X (for the forward pass, and again for backward
// weights) and dy into GD_BUF_DY, read by both backward primitives. (Given
// format "any", backward weights chose a blocked layout (aBcd16b) for x and
// dy: a second conversion of dy, and blocked conversions cost 1.5x the NHWC
// ones, while its kernel (jit_bf16) runs as fast on NHWC. w16 CorInfoMax
// step, oneDNN verbose, AMD EPYC Zen 4, 2026-12-03: reorders 35 -> 27 ms,
// backward weights 68 -> 70 ms.) The
// float32 OIHW weights are converted by the weight reorders that run anyway.
// Nothing is kept between calls, as in float32 mode.
#include <string.h>
#include <stdlib.h>
#include "gd.h"

struct gd_conv {
	gd_ctx *c;
	int bias;
	dnnl_primitive_desc_t fwd_pd, bwd_d_pd, bwd_w_pd;
	gd_prim fwd, bwd_d, bwd_w;
	// User-side memories; the caller's buffers are bound for one call only.
	dnnl_memory_t x, w, b, y, dx, dy, dw, db;
	// Weights in the primitives' layouts (NULL when that layout is OIHW),
	// their reorders, and a diff-bias buffer used when the caller passes no db.
	dnnl_memory_t w_fwd, w_bd, dw_bw, db_tmp;
	gd_prim re_w_fwd, re_w_bd, re_dw;
	// bfloat16 mode: x and dy in bfloat16 (bound to a shared buffer per
	// call) and the float32 -> bfloat16 conversions.
	struct conv_bf {
		dnnl_memory_t m;
		gd_prim re;
		int buf; // the shared buffer it lives in
	} x_bf, dy_bf;
};

void gd_conv_destroy(gd_conv *cv) {
	if (!cv) return;
	gd_prim_destroy(&cv->fwd);
	gd_prim_destroy(&cv->bwd_d);
	gd_prim_destroy(&cv->bwd_w);
	gd_prim_destroy(&cv->re_w_fwd);
	gd_prim_destroy(&cv->re_w_bd);
	gd_prim_destroy(&cv->re_dw);
	struct conv_bf *bfs[] = {&cv->x_bf, &cv->dy_bf};
	for (size_t i = 0; i < sizeof(bfs) / sizeof(bfs[0]); i++) {
		gd_prim_destroy(&bfs[i]->re);
		gd_mem_destroy(&bfs[i]->m);
	}
	dnnl_memory_t *mems[] = {&cv->x, &cv->w, &cv->b, &cv->y, &cv->dx, &cv->dy, &cv->dw, &cv->db,
		&cv->w_fwd, &cv->w_bd, &cv->dw_bw, &cv->db_tmp};
	for (size_t i = 0; i < sizeof(mems) / sizeof(mems[0]); i++) gd_mem_destroy(mems[i]);
	if (cv->fwd_pd) dnnl_primitive_desc_destroy(cv->fwd_pd);
	if (cv->bwd_d_pd) dnnl_primitive_desc_destroy(cv->bwd_d_pd);
	if (cv->bwd_w_pd) dnnl_primitive_desc_destroy(cv->bwd_w_pd);
	free(cv);
}

// conv_weights prepares the primitive-side weights for a primitive whose
// chosen weights layout is pmd: when pmd differs from the user's OIHW it
// allocates a buffer and a reorder (to it from OIHW when to_prim, else from
// it to OIHW).
static dnnl_status_t conv_weights(gd_ctx *c, const dnnl_memory_desc_t *pmd, const dnnl_memory_desc_t *umd,
	int to_prim, dnnl_memory_t *mem, gd_prim *re) {
	if (dnnl_memory_desc_equal(pmd, umd)) return dnnl_success;
	gd_ctx_reserve(c, to_prim ? GD_BUF_W : GD_BUF_DW, dnnl_memory_desc_get_size(pmd));
	dnnl_status_t st = gd_mem(mem, c, pmd, 0);
	if (st != dnnl_success) return st;
	return to_prim ? gd_reorder_create(re, c, umd, pmd) : gd_reorder_create(re, c, pmd, umd);
}

// conv_bf_create prepares a bfloat16 copy in the primitive's layout pmd of
// a float32 NHWC tensor described by umd: a memory without buffer (bound to
// shared buffer buf per call, reserved here) and the converting reorder.
static dnnl_status_t conv_bf_create(gd_ctx *c, struct conv_bf *b, int buf, const dnnl_memory_desc_t *umd,
	const dnnl_memory_desc_t *pmd) {
	b->buf = buf;
	dnnl_status_t st = gd_mem(&b->m, c, pmd, 0);
	if (st != dnnl_success) return st;
	gd_ctx_reserve(c, buf, dnnl_memory_desc_get_size(pmd));
	return gd_reorder_create(&b->re, c, umd, pmd);
}

// bwd_weights_pd creates the backward-weights primitive descriptor of bwd,
// skipping oneDNN's 1x1 kernels when avoid_1x1 is set. oneDNN 2.6's
// jit_1x1 backward-weights kernels (avx2 and avx512_core) write past their
// per-thread "reduce to unit stride" buffer when the source is NHWC, the
// stride is above 1 and the input has fewer channels than the kernel's
// channel block (8 or 16): wrong, run-to-run different weight gradients
// with 2 threads, or a crash (oneDNN issue #6035, open). ResNet's 1x1
// stride-2 downsample convolutions have that shape at small widths (16
// input channels at width 4). The next implementation oneDNN offers
// (jit:avx2, jit:avx512_core or gemm) is correct.
static dnnl_status_t bwd_weights_pd(dnnl_primitive_desc_t *pd, gd_ctx *c, const dnnl_convolution_desc_t *bwd,
	const_dnnl_primitive_desc_t hint, int avoid_1x1) {
	*pd = NULL;
	if (!avoid_1x1) return dnnl_primitive_desc_create(pd, bwd, c->attr, c->eng, hint);
	dnnl_primitive_desc_iterator_t it;
	dnnl_status_t st = dnnl_primitive_desc_iterator_create(&it, bwd, c->attr, c->eng, hint);
	if (st != dnnl_success) return st;
	for (;;) {
		dnnl_primitive_desc_t cand = dnnl_primitive_desc_iterator_fetch(it);
		if (!cand) {
			st = dnnl_out_of_memory;
			break;
		}
		const char *impl = NULL;
		if (dnnl_primitive_desc_query(cand, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
			strncmp(impl, "jit_1x1", 7) != 0) {
			*pd = cand;
			st = dnnl_success;
			break;
		}
		dnnl_primitive_desc_destroy(cand);
		st = dnnl_primitive_desc_iterator_next(it);
		if (st != dnnl_success) {
			st = dnnl_unimplemented; // dnnl_iterator_ends: no other implementation
			break;
		}
	}
	dnnl_primitive_desc_iterator_destroy(it);
	return st;
}

dnnl_status_t gd_conv_create(gd_conv **out, gd_ctx *c, int n, int h, int w, int ci, int k,
	int kh, int kw, int stride, int pad, int bias) {
	*out = NULL;
	gd_set_threads(c);
	gd_conv *cv = calloc(1, sizeof(gd_conv));
	if (!cv) {
		c->where = "allocate convolution";
		return dnnl_out_of_memory;
	}
	cv->c = c;
	cv->bias = bias;
	int oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
	dnnl_dim_t src_dims[4] = {n, ci, h, w}, dst_dims[4] = {n, k, oh, ow};
	dnnl_dim_t w_dims[4] = {k, ci, kh, kw}, b_dims[1] = {k};
	dnnl_dims_t strides = {stride, stride}, padding = {pad, pad};
	dnnl_memory_desc_t src_md, dst_md, w_any, w_user, b_md;
	// The primitives' own source, weights and output-gradient descriptors:
	// the float32 ones, or their bfloat16 twins in bfloat16 mode.
	dnnl_memory_desc_t src_p, dst_p, w_any_p;
	const dnnl_data_type_t pdt = c->bf16 ? dnnl_bf16 : dnnl_f32;
	dnnl_status_t st;
	GD_TRY(gd_md(&src_md, 4, src_dims, dnnl_nhwc), "source descriptor");
	GD_TRY(gd_md(&dst_md, 4, dst_dims, dnnl_nhwc), "destination descriptor");
	GD_TRY(gd_md(&w_any, 4, w_dims, dnnl_format_tag_any), "weights descriptor");
	GD_TRY(gd_md_dt(&src_p, 4, src_dims, pdt, dnnl_nhwc), "primitive source descriptor");
	GD_TRY(gd_md_dt(&dst_p, 4, dst_dims, pdt, dnnl_nhwc), "primitive destination-gradient descriptor");
	// Every primitive reads NHWC activations, in bfloat16 mode too: given
	// "any" next to a float32 NHWC output, oneDNN 2.6 falls back to its
	// reference kernels for forward and backward data, and backward weights
	// gains nothing from its blocked choice (see the top of the file).
	GD_TRY(gd_md_dt(&w_any_p, 4, w_dims, pdt, dnnl_format_tag_any), "primitive weights descriptor");
	GD_TRY(gd_md(&w_user, 4, w_dims, dnnl_oihw), "OIHW weights descriptor");
	GD_TRY(gd_md(&b_md, 1, b_dims, dnnl_a), "bias descriptor");
	// dnnl_convolution_auto picks the same (direct) implementations for
	// NHWC f32 on AVX-512 (measured on the ResNet-18 shapes), so ask for
	// direct explicitly.
	const dnnl_alg_kind_t algk = dnnl_convolution_direct;

	// Forward.
	dnnl_convolution_desc_t fd;
	GD_TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, algk, &src_p, &w_any_p,
		bias ? &b_md : NULL, &dst_md, strides, padding, padding), "forward descriptor");
	GD_TRY(dnnl_primitive_desc_create(&cv->fwd_pd, &fd, c->attr, c->eng, NULL), "forward primitive descriptor");
	GD_TRY(gd_prim_create(&cv->fwd, c, cv->fwd_pd), "forward primitive");
	GD_TRY(conv_weights(c, dnnl_primitive_desc_query_md(cv->fwd_pd, dnnl_query_weights_md, 0), &w_user, 1,
		&cv->w_fwd, &cv->re_w_fwd), "forward weights reorder");

	// Backward data.
	dnnl_convolution_desc_t bdd;
	GD_TRY(dnnl_convolution_backward_data_desc_init(&bdd, algk, &src_md, &w_any_p, &dst_p, strides,
		padding, padding), "backward-data descriptor");
	GD_TRY(dnnl_primitive_desc_create(&cv->bwd_d_pd, &bdd, c->attr, c->eng, cv->fwd_pd),
		"backward-data primitive descriptor");
	GD_TRY(gd_prim_create(&cv->bwd_d, c, cv->bwd_d_pd), "backward-data primitive");
	GD_TRY(conv_weights(c, dnnl_primitive_desc_query_md(cv->bwd_d_pd, dnnl_query_weights_md, 0), &w_user, 1,
		&cv->w_bd, &cv->re_w_bd), "backward-data weights reorder");

	// Backward weights.
	dnnl_convolution_desc_t bwd;
	GD_TRY(dnnl_convolution_backward_weights_desc_init(&bwd, algk, &src_p, &w_any,
		bias ? &b_md : NULL, &dst_p, strides, padding, padding), "backward-weights descriptor");
	GD_TRY(bwd_weights_pd(&cv->bwd_w_pd, c, &bwd, cv->fwd_pd, kh == 1 && kw == 1 && stride > 1 && ci < 16),
		"backward-weights primitive descriptor");
	GD_TRY(gd_prim_create(&cv->bwd_w, c, cv->bwd_w_pd), "backward-weights primitive");
	GD_TRY(conv_weights(c, dnnl_primitive_desc_query_md(cv->bwd_w_pd, dnnl_query_diff_weights_md, 0), &w_user,
		0, &cv->dw_bw, &cv->re_dw), "backward-weights reorder");

	// User-side memories.
	GD_TRY(gd_mem(&cv->x, c, &src_md, 0), "memory x");
	GD_TRY(gd_mem(&cv->dx, c, &src_md, 0), "memory dx");
	GD_TRY(gd_mem(&cv->y, c, &dst_md, 0), "memory y");
	GD_TRY(gd_mem(&cv->dy, c, &dst_md, 0), "memory dy");
	GD_TRY(gd_mem(&cv->w, c, &w_user, 0), "memory w");
	GD_TRY(gd_mem(&cv->dw, c, &w_user, 0), "memory dw");
	if (bias) {
		GD_TRY(gd_mem(&cv->b, c, &b_md, 0), "memory b");
		GD_TRY(gd_mem(&cv->db, c, &b_md, 0), "memory db");
		GD_TRY(gd_mem(&cv->db_tmp, c, &b_md, 1), "memory db scratch");
	}
	if (c->bf16) {
		GD_TRY(conv_bf_create(c, &cv->x_bf, GD_BUF_X, &src_md, &src_p), "x to bfloat16");
		GD_TRY(conv_bf_create(c, &cv->dy_bf, GD_BUF_DY, &dst_md, &dst_p), "dy to bfloat16");
	}
	*out = cv;
	return dnnl_success;
out:
	gd_conv_destroy(cv);
	return st;
}

// conv_unbind detaches every caller buffer.
static dnnl_status_t conv_unbind(gd_conv *cv) {
	dnnl_memory_t mems[] = {cv->x, cv->w, cv->b, cv->y, cv->dx, cv->dy, cv->dw, cv->db,
		cv->x_bf.m, cv->dy_bf.m};
	return gd_unbind(mems, sizeof(mems) / sizeof(mems[0]));
}

// conv_to_bf16 converts the float32 memory src (already bound) into the
// bfloat16 copy b, bound to its shared buffer; it leaves
// *out pointing at the memory the primitive should read.
static dnnl_status_t conv_to_bf16(gd_conv *cv, struct conv_bf *b, dnnl_memory_t src, dnnl_memory_t *out) {
	gd_ctx *c = cv->c;
	dnnl_status_t st = gd_bind_shared(c, b->m, b->buf);
	if (st != dnnl_success) return st;
	*out = b->m;
	return gd_reorder(c, &b->re, src, b->m);
}

dnnl_status_t gd_conv_forward(gd_conv *cv, float *x, float *w, float *b, float *y) {
	gd_ctx *c = cv->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(cv->x, x), "bind x");
	GD_TRY(gd_bind(cv->w, w), "bind w");
	GD_TRY(gd_bind(cv->y, y), "bind y");
	if (cv->bias) GD_TRY(gd_bind(cv->b, b), "bind b");
	dnnl_memory_t wp = cv->w, xp = cv->x;
	if (cv->w_fwd) {
		GD_TRY(gd_bind_shared(c, cv->w_fwd, GD_BUF_W), "bind layout weights");
		GD_TRY(gd_reorder(c, &cv->re_w_fwd, cv->w, cv->w_fwd), "reorder weights");
		wp = cv->w_fwd;
	}
	if (c->bf16) GD_TRY(conv_to_bf16(cv, &cv->x_bf, cv->x, &xp), "x to bfloat16");
	dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, xp}, {DNNL_ARG_WEIGHTS, wp}, {DNNL_ARG_DST, cv->y},
		{DNNL_ARG_BIAS, cv->b}};
	GD_TRY(gd_exec(c, &cv->fwd, cv->bias ? 4 : 3, args), "execute forward");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:
	GD_FINISH(conv_unbind(cv));
}

dnnl_status_t gd_conv_backward(gd_conv *cv, float *x, float *w, float *dy, float *dx, float *dw,
	float *db) {
	gd_ctx *c = cv->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(cv->x, x), "bind x");
	GD_TRY(gd_bind(cv->dy, dy), "bind dy");
	GD_TRY(gd_bind(cv->dw, dw), "bind dw");
	// dyp feeds both backward primitives, xp backward weights.
	dnnl_memory_t xp = cv->x, dyp = cv->dy;
	if (c->bf16) {
		GD_TRY(conv_to_bf16(cv, &cv->dy_bf, cv->dy, &dyp), "dy to bfloat16");
		GD_TRY(conv_to_bf16(cv, &cv->x_bf, cv->x, &xp), "x to bfloat16");
	}
	if (dx) {
		GD_TRY(gd_bind(cv->w, w), "bind w");
		GD_TRY(gd_bind(cv->dx, dx), "bind dx");
		dnnl_memory_t wp = cv->w;
		if (cv->w_bd) {
			GD_TRY(gd_bind_shared(c, cv->w_bd, GD_BUF_W), "bind layout weights");
			GD_TRY(gd_reorder(c, &cv->re_w_bd, cv->w, cv->w_bd), "reorder weights");
			wp = cv->w_bd;
		}
		dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, dyp}, {DNNL_ARG_WEIGHTS, wp},
			{DNNL_ARG_DIFF_SRC, cv->dx}};
		GD_TRY(gd_exec(c, &cv->bwd_d, 3, args), "execute backward data");
	}
	dnnl_memory_t dbm = NULL;
	if (cv->bias) {
		dbm = cv->db_tmp;
		if (db) {
			GD_TRY(gd_bind(cv->db, db), "bind db");
			dbm = cv->db;
		}
	}
	if (cv->dw_bw) GD_TRY(gd_bind_shared(c, cv->dw_bw, GD_BUF_DW), "bind layout weight gradient");
	dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, xp}, {DNNL_ARG_DIFF_DST, dyp},
		{DNNL_ARG_DIFF_WEIGHTS, cv->dw_bw ? cv->dw_bw : cv->dw}, {DNNL_ARG_DIFF_BIAS, dbm}};
	GD_TRY(gd_exec(c, &cv->bwd_w, cv->bias ? 4 : 3, args), "execute backward weights");
	if (cv->dw_bw) GD_TRY(gd_reorder(c, &cv->re_dw, cv->dw_bw, cv->dw), "reorder weight gradient");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:
	GD_FINISH(conv_unbind(cv));
}

// gd_conv_impl names the implementation oneDNN chose: which = 0 forward,
// 1 backward data, 2 backward weights.
const char *gd_conv_impl(gd_conv *cv, int which) {
	const_dnnl_primitive_desc_t pd = which == 0 ? cv->fwd_pd : which == 1 ? cv->bwd_d_pd : cv->bwd_w_pd;
	const char *s = NULL;
	if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s) return "?";
	return s;
}
