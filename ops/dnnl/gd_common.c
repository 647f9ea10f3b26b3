// gd_common.c: engine, stream, memory and primitive helpers.
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "gd.h"

dnnl_status_t gd_ctx_create(gd_ctx **out, int threads, int bf16, const char **where) {
	*out = NULL;
	*where = "allocate context";
	gd_ctx *c = calloc(1, sizeof(gd_ctx));
	if (!c) return dnnl_out_of_memory;
	c->threads = threads;
	c->bf16 = bf16;
	gd_set_threads(c);
	dnnl_status_t st;
	GD_TRY(dnnl_engine_create(&c->eng, dnnl_cpu, 0), "create CPU engine");
	GD_TRY(dnnl_stream_create(&c->stream, c->eng, dnnl_stream_default_flags), "create stream");
	GD_TRY(dnnl_primitive_attr_create(&c->attr), "create primitive attributes");
	GD_TRY(dnnl_primitive_attr_set_scratchpad_mode(c->attr, dnnl_scratchpad_mode_user),
		"set user scratchpad mode");
	c->where = "";
	*out = c;
	return dnnl_success;
out:
	*where = c->where;
	gd_ctx_destroy(c);
	return st;
}

const char *gd_ctx_where(gd_ctx *c) { return c->where ? c->where : "?"; }

void gd_ctx_destroy(gd_ctx *c) {
	if (!c) return;
	if (c->attr) dnnl_primitive_attr_destroy(c->attr);
	if (c->stream) dnnl_stream_destroy(c->stream);
	if (c->eng) dnnl_engine_destroy(c->eng);
	for (int i = 0; i < GD_NBUF; i++) free(c->buf[i]);
	free(c);
}

// gd_ctx_reserve records that shared buffer i must hold bytes (called when
// an operator is created).
void gd_ctx_reserve(gd_ctx *c, int i, size_t bytes) {
	if (bytes > c->want[i]) c->want[i] = bytes;
}

// gd_ctx_buf returns shared buffer i, first growing it (64-byte aligned) to
// the largest size reserved, or NULL when out of memory. It allocates only
// after an operator with a larger need was created.
void *gd_ctx_buf(gd_ctx *c, int i) {
	if (c->cap[i] >= c->want[i] && c->buf[i]) return c->buf[i];
	free(c->buf[i]);
	c->cap[i] = 0;
	size_t sz = (c->want[i] + 63) / 64 * 64;
	if (sz == 0) sz = 64;
	c->buf[i] = aligned_alloc(64, sz);
	if (c->buf[i]) c->cap[i] = sz;
	return c->buf[i];
}

// gd_bind_shared binds memory m to shared buffer i.
dnnl_status_t gd_bind_shared(gd_ctx *c, dnnl_memory_t m, int i) {
	void *p = gd_ctx_buf(c, i);
	if (!p) return dnnl_out_of_memory;
	return dnnl_memory_set_data_handle(m, p);
}

// gd_set_threads applies the backend's thread count. omp_set_num_threads
// sets a per-OS-thread value and Go may run the caller on any OS thread, so
// every entry point calls this first; it only stores an integer.
void gd_set_threads(gd_ctx *c) {
	if (omp_get_max_threads() != c->threads) omp_set_num_threads(c->threads);
}

dnnl_status_t gd_md_dt(dnnl_memory_desc_t *md, int ndims, const dnnl_dim_t *dims, dnnl_data_type_t dt,
	dnnl_format_tag_t tag) {
	return dnnl_memory_desc_init_by_tag(md, ndims, dims, dt, tag);
}

dnnl_status_t gd_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dim_t *dims, dnnl_format_tag_t tag) {
	return gd_md_dt(md, ndims, dims, dnnl_f32, tag);
}

// gd_mem creates a memory object for md: with its own buffer when allocate
// is set, else without one (the caller's buffer is bound per call).
dnnl_status_t gd_mem(dnnl_memory_t *m, gd_ctx *c, const dnnl_memory_desc_t *md, int allocate) {
	return dnnl_memory_create(m, md, c->eng, allocate ? DNNL_MEMORY_ALLOCATE : DNNL_MEMORY_NONE);
}

void gd_mem_destroy(dnnl_memory_t *m) {
	if (*m) dnnl_memory_destroy(*m);
	*m = NULL;
}

// gd_prim_create creates the primitive of pd and, when pd asks for one, its
// scratchpad memory.
dnnl_status_t gd_prim_create(gd_prim *p, gd_ctx *c, const_dnnl_primitive_desc_t pd) {
	p->p = NULL;
	p->scratch = NULL;
	dnnl_status_t st = dnnl_primitive_create(&p->p, pd);
	if (st != dnnl_success) return st;
	const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
	if (smd && dnnl_memory_desc_get_size(smd) > 0) {
		gd_ctx_reserve(c, GD_BUF_SCRATCH, dnnl_memory_desc_get_size(smd));
		st = gd_mem(&p->scratch, c, smd, 0);
		if (st != dnnl_success) {
			dnnl_primitive_destroy(p->p);
			p->p = NULL;
			return st;
		}
	}
	return dnnl_success;
}

void gd_prim_destroy(gd_prim *p) {
	if (p->p) dnnl_primitive_destroy(p->p);
	if (p->scratch) dnnl_memory_destroy(p->scratch);
	p->p = NULL;
	p->scratch = NULL;
}

dnnl_status_t gd_bind(dnnl_memory_t m, void *ptr) {
	return dnnl_memory_set_data_handle(m, ptr);
}

// gd_unbind detaches the buffers of the n memory objects (NULL entries are
// skipped) and returns the first failure.
dnnl_status_t gd_unbind(const dnnl_memory_t *mems, size_t n) {
	dnnl_status_t first = dnnl_success;
	for (size_t i = 0; i < n; i++) {
		if (!mems[i]) continue;
		dnnl_status_t st = dnnl_memory_set_data_handle(mems[i], NULL);
		if (first == dnnl_success) first = st;
	}
	return first;
}

// gd_exec executes p with args; args must have room for one more entry
// (the scratchpad).
dnnl_status_t gd_exec(gd_ctx *c, gd_prim *p, int nargs, dnnl_exec_arg_t *args) {
	if (p->scratch) {
		dnnl_status_t st = gd_bind_shared(c, p->scratch, GD_BUF_SCRATCH);
		if (st != dnnl_success) return st;
		args[nargs].arg = DNNL_ARG_SCRATCHPAD;
		args[nargs].memory = p->scratch;
		nargs++;
	}
	return dnnl_primitive_execute(p->p, c->stream, nargs, args);
}

dnnl_status_t gd_reorder_create(gd_prim *p, gd_ctx *c, const dnnl_memory_desc_t *src,
	const dnnl_memory_desc_t *dst) {
	dnnl_primitive_desc_t pd = NULL;
	dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, src, c->eng, dst, c->eng, c->attr);
	if (st != dnnl_success) return st;
	st = gd_prim_create(p, c, pd);
	dnnl_primitive_desc_destroy(pd);
	return st;
}

dnnl_status_t gd_reorder(gd_ctx *c, gd_prim *p, dnnl_memory_t src, dnnl_memory_t dst) {
	dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
	return gd_exec(c, p, 2, args);
}
