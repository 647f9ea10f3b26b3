// gd_eltwise.c: ReLU (forward, and backward from the output y) and binary
// addition on dense 1-D vectors of a fixed length.
#include <stdlib.h>
#include "gd.h"

struct gd_relu {
	gd_ctx *c;
	gd_prim fwd, bwd;
	dnnl_memory_t x, y, dy, dx;
};

void gd_relu_destroy(gd_relu *r) {
	if (!r) return;
	gd_prim_destroy(&r->fwd);
	gd_prim_destroy(&r->bwd);
	dnnl_memory_t *mems[] = {&r->x, &r->y, &r->dy, &r->dx};
	for (size_t i = 0; i < 4; i++) gd_mem_destroy(mems[i]);
	free(r);
}

dnnl_status_t gd_relu_create(gd_relu **out, gd_ctx *c, long long len) {
	*out = NULL;
	gd_set_threads(c);
	gd_relu *r = calloc(1, sizeof(gd_relu));
	if (!r) {
		c->where = "allocate relu";
		return dnnl_out_of_memory;
	}
	r->c = c;
	dnnl_status_t st;
	dnnl_primitive_desc_t fwd_pd = NULL, bwd_pd = NULL;
	dnnl_dim_t dims[1] = {len};
	dnnl_memory_desc_t md;
	GD_TRY(gd_md(&md, 1, dims, dnnl_a), "data descriptor");
	const dnnl_alg_kind_t alg = dnnl_eltwise_relu_use_dst_for_bwd;
	dnnl_eltwise_desc_t d;
	GD_TRY(dnnl_eltwise_forward_desc_init(&d, dnnl_forward_training, alg, &md, 0.f, 0.f), "forward descriptor");
	GD_TRY(dnnl_primitive_desc_create(&fwd_pd, &d, c->attr, c->eng, NULL), "forward primitive descriptor");
	GD_TRY(gd_prim_create(&r->fwd, c, fwd_pd), "forward primitive");
	GD_TRY(dnnl_eltwise_backward_desc_init(&d, alg, &md, &md, 0.f, 0.f), "backward descriptor");
	GD_TRY(dnnl_primitive_desc_create(&bwd_pd, &d, c->attr, c->eng, fwd_pd), "backward primitive descriptor");
	GD_TRY(gd_prim_create(&r->bwd, c, bwd_pd), "backward primitive");
	dnnl_memory_t *mems[] = {&r->x, &r->y, &r->dy, &r->dx};
	for (size_t i = 0; i < 4; i++) GD_TRY(gd_mem(mems[i], c, &md, 0), "memory");
out:
	if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
	if (bwd_pd) dnnl_primitive_desc_destroy(bwd_pd);
	if (st != dnnl_success) {
		gd_relu_destroy(r);
		return st;
	}
	*out = r;
	return dnnl_success;
}

static dnnl_status_t relu_unbind(gd_relu *r) {
	dnnl_memory_t mems[] = {r->x, r->y, r->dy, r->dx};
	return gd_unbind(mems, 4);
}

dnnl_status_t gd_relu_forward(gd_relu *r, float *x, float *y) {
	gd_ctx *c = r->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(r->x, x), "bind x");
	GD_TRY(gd_bind(r->y, y), "bind y");
	dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, r->x}, {DNNL_ARG_DST, r->y}};
	GD_TRY(gd_exec(c, &r->fwd, 2, args), "execute forward");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:
	GD_FINISH(relu_unbind(r));
}

dnnl_status_t gd_relu_backward(gd_relu *r, float *y, float *dy, float *dx) {
	gd_ctx *c = r->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(r->y, y), "bind y");
	GD_TRY(gd_bind(r->dy, dy), "bind dy");
	GD_TRY(gd_bind(r->dx, dx), "bind dx");
	dnnl_exec_arg_t args[4] = {{DNNL_ARG_DST, r->y}, {DNNL_ARG_DIFF_DST, r->dy}, {DNNL_ARG_DIFF_SRC, r->dx}};
	GD_TRY(gd_exec(c, &r->bwd, 3, args), "execute backward");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:
	GD_FINISH(relu_unbind(r));
}

struct gd_add {
	gd_ctx *c;
	gd_prim prim;
	dnnl_memory_t a, b, y;
};

void gd_add_destroy(gd_add *a) {
	if (!a) return;
	gd_prim_destroy(&a->prim);
	gd_mem_destroy(&a->a);
	gd_mem_destroy(&a->b);
	gd_mem_destroy(&a->y);
	free(a);
}

dnnl_status_t gd_add_create(gd_add **out, gd_ctx *c, long long len) {
	*out = NULL;
	gd_set_threads(c);
	gd_add *a = calloc(1, sizeof(gd_add));
	if (!a) {
		c->where = "allocate add";
		return dnnl_out_of_memory;
	}
	a->c = c;
	dnnl_status_t st;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_dim_t dims[1] = {len};
	dnnl_memory_desc_t md;
	GD_TRY(gd_md(&md, 1, dims, dnnl_a), "data descriptor");
	dnnl_binary_desc_t d;
	GD_TRY(dnnl_binary_desc_init(&d, dnnl_binary_add, &md, &md, &md), "descriptor");
	GD_TRY(dnnl_primitive_desc_create(&pd, &d, c->attr, c->eng, NULL), "primitive descriptor");
	GD_TRY(gd_prim_create(&a->prim, c, pd), "primitive");
	GD_TRY(gd_mem(&a->a, c, &md, 0), "memory a");
	GD_TRY(gd_mem(&a->b, c, &md, 0), "memory b");
	GD_TRY(gd_mem(&a->y, c, &md, 0), "memory y");
out:
	if (pd) dnnl_primitive_desc_destroy(pd);
	if (st != dnnl_success) {
		gd_add_destroy(a);
		return st;
	}
	*out = a;
	return dnnl_success;
}

dnnl_status_t gd_add_run(gd_add *a, float *x0, float *x1, float *y) {
	gd_ctx *c = a->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(a->a, x0), "bind a");
	GD_TRY(gd_bind(a->b, x1), "bind b");
	GD_TRY(gd_bind(a->y, y), "bind y");
	dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC_0, a->a}, {DNNL_ARG_SRC_1, a->b}, {DNNL_ARG_DST, a->y}};
	GD_TRY(gd_exec(c, &a->prim, 3, args), "execute");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:;
	dnnl_memory_t mems[] = {a->a, a->b, a->y};
	GD_FINISH(gd_unbind(mems, 3));
}
