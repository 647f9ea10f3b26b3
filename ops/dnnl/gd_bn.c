// gd_bn.c: batch normalisation with separate scale (gamma) and shift (beta)
// tensors. Data is NHWC viewed as {N, C, Spatial, 1} (format nhwc), or
// {N, C} (format nc) when Spatial == 1; statistics are 1-D {C}.
#include <stdlib.h>
#include <string.h>
#include "gd.h"

struct gd_bn {
	gd_ctx *c;
	gd_prim train, infer, bwd;
	dnnl_memory_t x, y, dx, dy, scale, shift, mean, var, dscale, dshift;
	// The backward primitive takes the shift as an argument although the
	// gradients do not depend on it; it gets this zero-filled buffer.
	dnnl_memory_t shift_bwd;
};

void gd_bn_destroy(gd_bn *bn) {
	if (!bn) return;
	gd_prim_destroy(&bn->train);
	gd_prim_destroy(&bn->infer);
	gd_prim_destroy(&bn->bwd);
	dnnl_memory_t *mems[] = {&bn->x, &bn->y, &bn->dx, &bn->dy, &bn->scale, &bn->shift, &bn->mean,
		&bn->var, &bn->dscale, &bn->dshift, &bn->shift_bwd};
	for (size_t i = 0; i < sizeof(mems) / sizeof(mems[0]); i++) gd_mem_destroy(mems[i]);
	free(bn);
}

dnnl_status_t gd_bn_create(gd_bn **out, gd_ctx *c, int n, int spatial, int ch, float eps) {
	*out = NULL;
	gd_set_threads(c);
	gd_bn *bn = calloc(1, sizeof(gd_bn));
	if (!bn) {
		c->where = "allocate batch norm";
		return dnnl_out_of_memory;
	}
	bn->c = c;
	dnnl_status_t st;
	dnnl_primitive_desc_t train_pd = NULL, infer_pd = NULL, bwd_pd = NULL;
	dnnl_memory_desc_t data_md, stat_md;
	dnnl_dim_t stat_dims[1] = {ch};
	if (spatial == 1) {
		dnnl_dim_t dims[2] = {n, ch};
		GD_TRY(gd_md(&data_md, 2, dims, dnnl_nc), "data descriptor");
	} else {
		dnnl_dim_t dims[4] = {n, ch, spatial, 1};
		GD_TRY(gd_md(&data_md, 4, dims, dnnl_nhwc), "data descriptor");
	}
	GD_TRY(gd_md(&stat_md, 1, stat_dims, dnnl_a), "statistics descriptor");
	unsigned flags = dnnl_use_scale | dnnl_use_shift;

	dnnl_batch_normalization_desc_t d;
	GD_TRY(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training, &data_md, eps, flags),
		"training descriptor");
	GD_TRY(dnnl_primitive_desc_create(&train_pd, &d, c->attr, c->eng, NULL), "training primitive descriptor");
	GD_TRY(gd_prim_create(&bn->train, c, train_pd), "training primitive");

	GD_TRY(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_inference, &data_md, eps,
		flags | dnnl_use_global_stats), "inference descriptor");
	GD_TRY(dnnl_primitive_desc_create(&infer_pd, &d, c->attr, c->eng, NULL), "inference primitive descriptor");
	GD_TRY(gd_prim_create(&bn->infer, c, infer_pd), "inference primitive");

	GD_TRY(dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, &data_md, &data_md, eps, flags),
		"backward descriptor");
	GD_TRY(dnnl_primitive_desc_create(&bwd_pd, &d, c->attr, c->eng, train_pd), "backward primitive descriptor");
	GD_TRY(gd_prim_create(&bn->bwd, c, bwd_pd), "backward primitive");

	dnnl_memory_t *data[] = {&bn->x, &bn->y, &bn->dx, &bn->dy};
	for (size_t i = 0; i < 4; i++) GD_TRY(gd_mem(data[i], c, &data_md, 0), "data memory");
	dnnl_memory_t *stats[] = {&bn->scale, &bn->shift, &bn->mean, &bn->var, &bn->dscale, &bn->dshift};
	for (size_t i = 0; i < 6; i++) GD_TRY(gd_mem(stats[i], c, &stat_md, 0), "statistics memory");
	GD_TRY(gd_mem(&bn->shift_bwd, c, &stat_md, 1), "backward shift memory");
	void *h = NULL;
	GD_TRY(dnnl_memory_get_data_handle(bn->shift_bwd, &h), "backward shift handle");
	memset(h, 0, (size_t)ch * sizeof(float));
out:
	if (train_pd) dnnl_primitive_desc_destroy(train_pd);
	if (infer_pd) dnnl_primitive_desc_destroy(infer_pd);
	if (bwd_pd) dnnl_primitive_desc_destroy(bwd_pd);
	if (st != dnnl_success) {
		gd_bn_destroy(bn);
		return st;
	}
	*out = bn;
	return dnnl_success;
}

static dnnl_status_t bn_unbind(gd_bn *bn) {
	dnnl_memory_t mems[] = {bn->x, bn->y, bn->dx, bn->dy, bn->scale, bn->shift, bn->mean, bn->var,
		bn->dscale, bn->dshift};
	return gd_unbind(mems, sizeof(mems) / sizeof(mems[0]));
}

dnnl_status_t gd_bn_forward_train(gd_bn *bn, float *x, float *gamma, float *beta, float *y,
	float *mean, float *var) {
	gd_ctx *c = bn->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(bn->x, x), "bind x");
	GD_TRY(gd_bind(bn->scale, gamma), "bind gamma");
	GD_TRY(gd_bind(bn->shift, beta), "bind beta");
	GD_TRY(gd_bind(bn->y, y), "bind y");
	GD_TRY(gd_bind(bn->mean, mean), "bind mean");
	GD_TRY(gd_bind(bn->var, var), "bind variance");
	dnnl_exec_arg_t args[7] = {{DNNL_ARG_SRC, bn->x}, {DNNL_ARG_SCALE, bn->scale}, {DNNL_ARG_SHIFT, bn->shift},
		{DNNL_ARG_DST, bn->y}, {DNNL_ARG_MEAN, bn->mean}, {DNNL_ARG_VARIANCE, bn->var}};
	GD_TRY(gd_exec(c, &bn->train, 6, args), "execute training forward");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:
	GD_FINISH(bn_unbind(bn));
}

dnnl_status_t gd_bn_forward_infer(gd_bn *bn, float *x, float *gamma, float *beta, float *mean,
	float *var, float *y) {
	gd_ctx *c = bn->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(bn->x, x), "bind x");
	GD_TRY(gd_bind(bn->scale, gamma), "bind gamma");
	GD_TRY(gd_bind(bn->shift, beta), "bind beta");
	GD_TRY(gd_bind(bn->mean, mean), "bind running mean");
	GD_TRY(gd_bind(bn->var, var), "bind running variance");
	GD_TRY(gd_bind(bn->y, y), "bind y");
	dnnl_exec_arg_t args[7] = {{DNNL_ARG_SRC, bn->x}, {DNNL_ARG_SCALE, bn->scale}, {DNNL_ARG_SHIFT, bn->shift},
		{DNNL_ARG_MEAN, bn->mean}, {DNNL_ARG_VARIANCE, bn->var}, {DNNL_ARG_DST, bn->y}};
	GD_TRY(gd_exec(c, &bn->infer, 6, args), "execute inference forward");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:
	GD_FINISH(bn_unbind(bn));
}

dnnl_status_t gd_bn_backward(gd_bn *bn, float *x, float *gamma, float *mean, float *var, float *dy,
	float *dx, float *dgamma, float *dbeta) {
	gd_ctx *c = bn->c;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(gd_bind(bn->x, x), "bind x");
	GD_TRY(gd_bind(bn->scale, gamma), "bind gamma");
	GD_TRY(gd_bind(bn->mean, mean), "bind mean");
	GD_TRY(gd_bind(bn->var, var), "bind variance");
	GD_TRY(gd_bind(bn->dy, dy), "bind dy");
	GD_TRY(gd_bind(bn->dx, dx), "bind dx");
	GD_TRY(gd_bind(bn->dscale, dgamma), "bind dgamma");
	GD_TRY(gd_bind(bn->dshift, dbeta), "bind dbeta");
	dnnl_exec_arg_t args[10] = {{DNNL_ARG_SRC, bn->x}, {DNNL_ARG_SCALE, bn->scale},
		{DNNL_ARG_SHIFT, bn->shift_bwd}, {DNNL_ARG_MEAN, bn->mean}, {DNNL_ARG_VARIANCE, bn->var},
		{DNNL_ARG_DIFF_DST, bn->dy}, {DNNL_ARG_DIFF_SRC, bn->dx}, {DNNL_ARG_DIFF_SCALE, bn->dscale},
		{DNNL_ARG_DIFF_SHIFT, bn->dshift}};
	GD_TRY(gd_exec(c, &bn->bwd, 9, args), "execute backward");
	GD_TRY(dnnl_stream_wait(c->stream), "wait");
out:
	GD_FINISH(bn_unbind(bn));
}
