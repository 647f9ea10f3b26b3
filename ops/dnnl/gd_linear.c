// gd_linear.c: fully connected layer y = x w^T + b as oneDNN inner product
// with plain layouts throughout: x {N, In} (nc), w {Out, In} (oi), y {N, Out}.
#include <stdlib.h>
#include "gd.h"

struct gd_linear {
	gd_ctx *c;
	int bias;
	gd_prim fwd, bwd_d, bwd_w;
	dnnl_memory_t x, w, b, y, dx, dy, dw, db, db_tmp;
};

void gd_linear_destroy(gd_linear *l) {
	if (!l) return;
	gd_prim_destroy(&l->fwd);
	gd_prim_destroy(&l->bwd_d);
	gd_prim_destroy(&l->bwd_w);
	dnnl_memory_t *mems[] = {&l->x, &l->w, &l->b, &l->y, &l->dx, &l->dy, &l->dw, &l->db, &l->db_tmp};
	for (size_t i = 0; i < sizeof(mems) / sizeof(mems[0]); i++) gd_mem_destroy(mems[i]);
	free(l);
}

dnnl_status_t gd_linear_create(gd_linear **out, gd_ctx *c, int n, int in, int outf, int bias) {
	*out = NULL;
	gd_set_threads(c);
	gd_linear *l = calloc(1, sizeof(gd_linear));
	if (!l) {
		c->where = "allocate linear";
		return dnnl_out_of_memory;
	}
	l->c = c;
	l->bias = bias;
	dnnl_status_t st;
	dnnl_primitive_desc_t fwd_pd = NULL, bwd_d_pd = NULL, bwd_w_pd = NULL;
	dnnl_dim_t src_dims[2] = {n, in}, dst_dims[2] = {n, outf}, w_dims[2] = {outf, in}, b_dims[1] = {outf};
	dnnl_memory_desc_t src_md, dst_md, w_md, b_md;
	GD_TRY(gd_md(&src_md, 2, src_dims, dnnl_nc), "source descriptor");
	GD_TRY(gd_md(&dst_md, 2, dst_dims, dnnl_nc), "destination descriptor");
	GD_TRY(gd_md(&w_md, 2, w_dims, dnnl_oi), "weights descriptor");
	GD_TRY(gd_md(&b_md, 1, b_dims, dnnl_a), "bias descriptor");

	dnnl_inner_product_desc_t d;
	GD_TRY(dnnl_inner_product_forward_desc_init(&d, dnnl_forward_training, &src_md, &w_md,
		bias ? &b_md : NULL, &dst_md), "forward descriptor");
	GD_TRY(dnnl_primitive_desc_create(&fwd_pd, &d, c->attr, c->eng, NULL), "forward primitive descriptor");
	GD_TRY(gd_prim_create(&l->fwd, c, fwd_pd), "forward primitive");

	GD_TRY(dnnl_inner_product_backward_data_desc_init(&d, &src_md, &w_md, &dst_md), "backward-data descriptor");
	GD_TRY(dnnl_primitive_desc_create(&bwd_d_pd, &d, c->attr, c->eng, fwd_pd),
		"backward-data primitive descriptor");
	GD_TRY(gd_prim_create(&l->bwd_d, c, bwd_d_pd), "backward-data primitive");

	GD_TRY(dnnl_inner_product_backward_weights_desc_init(&d, &src_md, &w_md, bias ? &b_md : NULL, &dst_md),
		"backward-weights descriptor");
	GD_TRY(dnnl_primitive_desc_create(&bwd_w_pd, &d, c->attr, c->eng, fwd_pd),
		"backward-weights primitive descriptor");
	GD_TRY(gd_prim_create(&l->bwd_w, c, bwd_w_pd), "backward-weights primitive");

	GD_TRY(gd_mem(&l->x, c, &src_md, 0), "memory x");
	GD_TRY(gd_mem(&l->dx, c, &src_md, 0), "memory dx");
	GD_TRY(gd_mem(&l->y, c, &dst_md, 0), "memory y");
	GD_TRY(gd_mem(&l->dy, c, &dst_md, 0), "memory dy");
	GD_TRY(gd_mem(&l->w, c, &w_md, 0), "memory w");
	GD_TRY(gd_mem(&l->dw, c, &w_md, 0), "memory dw");
	if (bias) {
		GD_TRY(gd_mem(&l->b, c, &b_md, 0), "memory b");
		GD_TRY(gd_mem(&l->db, c, &b_md, 0), "memory db");
		GD_TRY(gd_mem(&l->db_tmp, c, &b_md, 1), "memory db scratch");
	}
out:
	if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
	if (bwd_d_pd) dnnl_primitive_desc_destroy(bwd_d_pd);
	if (bwd_w_pd) dnnl_primitive_desc_destroy(bwd_w_pd);
	if (st != dnnl_success) {
		gd_linear_destroy(l);
		return st;
	}
	*out = l;
	return dnnl_success;
}

static dnnl_status_t linear_unbind(gd_linear *l) {
	dnnl_memory_t mems[] = {l->x, l->w, l->b, l->y, l->dx, l->dy, l->dw, l->db};
	return gd_unbind(mems, sizeof(mems) / sizeof(mems[0]));
}

dnnl_status_t gd_linear_forward(gd_linear *l, float *x, float *w, float *b, float *y) {
	gd_ctx *c = l->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(l->x, x), "bind x");
	GD_TRY(gd_bind(l->w, w), "bind w");
	GD_TRY(gd_bind(l->y, y), "bind y");
	if (l->bias) GD_TRY(gd_bind(l->b, b), "bind b");
	dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, l->x}, {DNNL_ARG_WEIGHTS, l->w}, {DNNL_ARG_DST, l->y},
		{DNNL_ARG_BIAS, l->b}};
	GD_TRY(gd_exec(c, &l->fwd, l->bias ? 4 : 3, args), "execute forward");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:
	GD_FINISH(linear_unbind(l));
}

dnnl_status_t gd_linear_backward(gd_linear *l, float *x, float *w, float *dy, float *dx, float *dw,
	float *db) {
	gd_ctx *c = l->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(l->x, x), "bind x");
	GD_TRY(gd_bind(l->dy, dy), "bind dy");
	GD_TRY(gd_bind(l->dw, dw), "bind dw");
	if (dx) {
		GD_TRY(gd_bind(l->w, w), "bind w");
		GD_TRY(gd_bind(l->dx, dx), "bind dx");
		dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, l->dy}, {DNNL_ARG_WEIGHTS, l->w},
			{DNNL_ARG_DIFF_SRC, l->dx}};
		GD_TRY(gd_exec(c, &l->bwd_d, 3, args), "execute backward data");
	}
	dnnl_memory_t dbm = NULL;
	if (l->bias) {
		dbm = l->db_tmp;
		if (db) {
			GD_TRY(gd_bind(l->db, db), "bind db");
			dbm = l->db;
		}
	}
	dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, l->x}, {DNNL_ARG_DIFF_DST, l->dy},
		{DNNL_ARG_DIFF_WEIGHTS, l->dw}, {DNNL_ARG_DIFF_BIAS, dbm}};
	GD_TRY(gd_exec(c, &l->bwd_w, l->bias ? 4 : 3, args), "execute backward weights");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:
	GD_FINISH(linear_unbind(l));
}
