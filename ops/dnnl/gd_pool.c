// gd_pool.c: pooling over NHWC input, forward (training) and backward.
// Max pooling keeps its argmax in a caller-owned workspace; average pooling
// (used for global average pooling) needs none.
#include <stdlib.h>
#include "gd.h"

struct gd_pool {
	gd_ctx *c;
	gd_prim fwd, bwd;
	dnnl_memory_t x, y, dx, dy, ws;
	size_t ws_bytes;
};

void gd_pool_destroy(gd_pool *p) {
	if (!p) return;
	gd_prim_destroy(&p->fwd);
	gd_prim_destroy(&p->bwd);
	dnnl_memory_t *mems[] = {&p->x, &p->y, &p->dx, &p->dy, &p->ws};
	for (size_t i = 0; i < sizeof(mems) / sizeof(mems[0]); i++) gd_mem_destroy(mems[i]);
	free(p);
}

dnnl_status_t gd_pool_create(gd_pool **out, gd_ctx *c, int max, int n, int h, int w, int ch,
	int kh, int kw, int stride, int pad) {
	*out = NULL;
	gd_set_threads(c);
	gd_pool *p = calloc(1, sizeof(gd_pool));
	if (!p) {
		c->where = "allocate pooling";
		return dnnl_out_of_memory;
	}
	p->c = c;
	dnnl_status_t st;
	dnnl_primitive_desc_t fwd_pd = NULL, bwd_pd = NULL;
	int oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
	dnnl_dim_t src_dims[4] = {n, ch, h, w}, dst_dims[4] = {n, ch, oh, ow};
	dnnl_dims_t strides = {stride, stride}, kernel = {kh, kw}, dilation = {0, 0}, padding = {pad, pad};
	dnnl_memory_desc_t src_md, dst_md;
	GD_TRY(gd_md(&src_md, 4, src_dims, dnnl_nhwc), "source descriptor");
	GD_TRY(gd_md(&dst_md, 4, dst_dims, dnnl_nhwc), "destination descriptor");
	dnnl_alg_kind_t alg = max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;

	dnnl_pooling_v2_desc_t d;
	GD_TRY(dnnl_pooling_v2_forward_desc_init(&d, dnnl_forward_training, alg, &src_md, &dst_md, strides,
		kernel, dilation, padding, padding), "forward descriptor");
	GD_TRY(dnnl_primitive_desc_create(&fwd_pd, &d, c->attr, c->eng, NULL), "forward primitive descriptor");
	GD_TRY(gd_prim_create(&p->fwd, c, fwd_pd), "forward primitive");
	const dnnl_memory_desc_t *ws_md = dnnl_primitive_desc_query_md(fwd_pd, dnnl_query_workspace_md, 0);
	if (ws_md && dnnl_memory_desc_get_size(ws_md) > 0) {
		p->ws_bytes = dnnl_memory_desc_get_size(ws_md);
		GD_TRY(gd_mem(&p->ws, c, ws_md, 0), "workspace memory");
	}

	GD_TRY(dnnl_pooling_v2_backward_desc_init(&d, alg, &src_md, &dst_md, strides, kernel, dilation,
		padding, padding), "backward descriptor");
	GD_TRY(dnnl_primitive_desc_create(&bwd_pd, &d, c->attr, c->eng, fwd_pd), "backward primitive descriptor");
	GD_TRY(gd_prim_create(&p->bwd, c, bwd_pd), "backward primitive");

	GD_TRY(gd_mem(&p->x, c, &src_md, 0), "memory x");
	GD_TRY(gd_mem(&p->dx, c, &src_md, 0), "memory dx");
	GD_TRY(gd_mem(&p->y, c, &dst_md, 0), "memory y");
	GD_TRY(gd_mem(&p->dy, c, &dst_md, 0), "memory dy");
out:
	if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
	if (bwd_pd) dnnl_primitive_desc_destroy(bwd_pd);
	if (st != dnnl_success) {
		gd_pool_destroy(p);
		return st;
	}
	*out = p;
	return dnnl_success;
}

size_t gd_pool_ws_bytes(gd_pool *p) { return p->ws_bytes; }

static dnnl_status_t pool_unbind(gd_pool *p) {
	dnnl_memory_t mems[] = {p->x, p->y, p->dx, p->dy, p->ws};
	return gd_unbind(mems, sizeof(mems) / sizeof(mems[0]));
}

dnnl_status_t gd_pool_forward(gd_pool *p, float *x, float *y, void *ws) {
	gd_ctx *c = p->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(p->x, x), "bind x");
	GD_TRY(gd_bind(p->y, y), "bind y");
	int nargs = 2;
	dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->x}, {DNNL_ARG_DST, p->y}};
	if (p->ws) {
		GD_TRY(gd_bind(p->ws, ws), "bind workspace");
		args[nargs].arg = DNNL_ARG_WORKSPACE;
		args[nargs].memory = p->ws;
		nargs++;
	}
	GD_TRY(gd_exec(c, &p->fwd, nargs, args), "execute forward");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:
	GD_FINISH(pool_unbind(p));
}

dnnl_status_t gd_pool_backward(gd_pool *p, float *dy, void *ws, float *dx) {
	gd_ctx *c = p->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(p->dy, dy), "bind dy");
	GD_TRY(gd_bind(p->dx, dx), "bind dx");
	int nargs = 2;
	dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, p->dy}, {DNNL_ARG_DIFF_SRC, p->dx}};
	if (p->ws) {
		GD_TRY(gd_bind(p->ws, ws), "bind workspace");
		args[nargs].arg = DNNL_ARG_WORKSPACE;
		args[nargs].memory = p->ws;
		nargs++;
	}
	GD_TRY(gd_exec(c, &p->bwd, nargs, args), "execute backward");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:
	GD_FINISH(pool_unbind(p));
}
