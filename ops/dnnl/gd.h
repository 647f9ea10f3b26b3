// gd.h: C helpers behind package dnnl. Every exported gd_* function performs
// one whole operation (bind the caller's buffers to cached memory objects,
// execute the cached primitives, wait for the stream, unbind the buffers) so
// that no Go pointer outlives a cgo call. Functions return a dnnl_status_t
// and, on failure, set the context's "where" to a static string naming the
// failed step (kept in C so that calls pass no Go pointer besides the data).
#ifndef GD_H
#define GD_H

#include <stddef.h>
#include <oneapi/dnnl/dnnl.h>

// Shared buffers of a context. Operators of one context never run
// concurrently and keep nothing in these between calls, so every operator
// uses the same few buffers for what it needs only during a call: the
// primitives' scratchpads, the weights in a primitive's layout, and the
// bfloat16 copies of activations. Each buffer grows to the largest size any
// operator reserved when it was created, so steady-state calls allocate
// nothing, and memory is the largest need, not the sum over all layers.
enum {
	GD_BUF_X,       // bfloat16 source (forward or backward weights)
	GD_BUF_DY,      // bfloat16 output gradient (both backward primitives)
	GD_BUF_W,       // weights in the primitive's layout
	GD_BUF_DW,      // weight gradient in the primitive's layout
	GD_BUF_SCRATCH, // primitive scratchpads
	GD_NBUF
};

// gd_ctx is one backend: a CPU engine, an in-order stream, the primitive
// attributes every primitive is created with (user-managed scratchpad),
// the OpenMP thread count applied before each call, and the shared buffers.
typedef struct {
	dnnl_engine_t eng;
	dnnl_stream_t stream;
	dnnl_primitive_attr_t attr;
	int threads;
	// bf16 makes convolutions compute in bfloat16 (see gd_conv.c): their
	// float32 inputs are converted into shared buffers on entry, outputs
	// and gradients stay float32.
	int bf16;
	void *buf[GD_NBUF];
	size_t cap[GD_NBUF], want[GD_NBUF];
	const char *where; // the step that failed last
} gd_ctx;

// gd_prim is a primitive with its scratchpad memory (NULL when the
// primitive needs none), bound to the context's shared scratchpad buffer at
// each execution.
typedef struct {
	dnnl_primitive_t p;
	dnnl_memory_t scratch;
} gd_prim;

dnnl_status_t gd_ctx_create(gd_ctx **out, int threads, int bf16, const char **where);
const char *gd_ctx_where(gd_ctx *c);
int gd_bind_threads(gd_ctx *c, const int *cpus, int n);
void gd_thread_affinity(gd_ctx *c, int *out);
void gd_ctx_destroy(gd_ctx *c);

// Convolution (NHWC activations, OIHW user weights).
typedef struct gd_conv gd_conv;
dnnl_status_t gd_conv_create(gd_conv **out, gd_ctx *c, int n, int h, int w, int ci, int k,
	int kh, int kw, int stride, int pad, int bias);
dnnl_status_t gd_conv_forward(gd_conv *cv, float *x, float *w, float *b, float *y);
dnnl_status_t gd_conv_backward(gd_conv *cv, float *x, float *w, float *dy, float *dx, float *dw,
	float *db);
const char *gd_conv_impl(gd_conv *cv, int which);
void gd_conv_destroy(gd_conv *cv);

// Batch normalisation over [N, Spatial, C].
typedef struct gd_bn gd_bn;
dnnl_status_t gd_bn_create(gd_bn **out, gd_ctx *c, int n, int spatial, int ch, float eps);
dnnl_status_t gd_bn_forward_train(gd_bn *bn, float *x, float *gamma, float *beta, float *y,
	float *mean, float *var);
dnnl_status_t gd_bn_forward_infer(gd_bn *bn, float *x, float *gamma, float *beta, float *mean,
	float *var, float *y);
dnnl_status_t gd_bn_backward(gd_bn *bn, float *x, float *gamma, float *mean, float *var, float *dy,
	float *dx, float *dgamma, float *dbeta);
dnnl_status_t gd_bn_sums(gd_bn *bn, float *x, float *shift, double *s1, double *s2);
dnnl_status_t gd_bn_grad_sums(gd_bn *bn, float *x, float *mean, float *dy, double *sdy, double *sdyx);
dnnl_status_t gd_bn_backward_given(gd_bn *bn, float *x, float *gamma, float *mean, float *var, float *dy,
	double *sdy, double *sdyx, long m, float *dx);
void gd_bn_destroy(gd_bn *bn);

// Pooling over NHWC input: max (with workspace) or average.
typedef struct gd_pool gd_pool;
dnnl_status_t gd_pool_create(gd_pool **out, gd_ctx *c, int max, int n, int h, int w, int ch,
	int kh, int kw, int stride, int pad);
size_t gd_pool_ws_bytes(gd_pool *p);
dnnl_status_t gd_pool_forward(gd_pool *p, float *x, float *y, void *ws);
dnnl_status_t gd_pool_backward(gd_pool *p, float *dy, void *ws, float *dx);
void gd_pool_destroy(gd_pool *p);

// Fully connected layer, weights [out, in].
typedef struct gd_linear gd_linear;
dnnl_status_t gd_linear_create(gd_linear **out, gd_ctx *c, int n, int in, int outf, int bias);
dnnl_status_t gd_linear_forward(gd_linear *l, float *x, float *w, float *b, float *y);
dnnl_status_t gd_linear_backward(gd_linear *l, float *x, float *w, float *dy, float *dx, float *dw,
	float *db);
void gd_linear_destroy(gd_linear *l);

// Element-wise ReLU (forward and backward from the output) and addition on
// dense vectors of a fixed length.
typedef struct gd_relu gd_relu;
dnnl_status_t gd_relu_create(gd_relu **out, gd_ctx *c, long long len);
dnnl_status_t gd_relu_forward(gd_relu *r, float *x, float *y);
dnnl_status_t gd_relu_backward(gd_relu *r, float *y, float *dy, float *dx);
void gd_relu_destroy(gd_relu *r);

typedef struct gd_add gd_add;
dnnl_status_t gd_add_create(gd_add **out, gd_ctx *c, long long len);
dnnl_status_t gd_add_run(gd_add *a, float *x0, float *x1, float *y);
void gd_add_destroy(gd_add *a);

// ---- internal helpers shared by the .c files ----

#define GD_CHECK(call, what)                \
	do {                                    \
		dnnl_status_t st_ = (call);         \
		if (st_ != dnnl_success) {          \
			c->where = (what);                \
			return st_;                     \
		}                                   \
	} while (0)

// GD_TRY is GD_CHECK for code with a cleanup label "out" and a status
// variable "st".
#define GD_TRY(call, what)                  \
	do {                                    \
		st = (call);                        \
		if (st != dnnl_success) {           \
			c->where = (what);                \
			goto out;                       \
		}                                   \
	} while (0)

void gd_set_threads(gd_ctx *c);
dnnl_status_t gd_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dim_t *dims, dnnl_format_tag_t tag);
dnnl_status_t gd_md_dt(dnnl_memory_desc_t *md, int ndims, const dnnl_dim_t *dims, dnnl_data_type_t dt,
	dnnl_format_tag_t tag);
void gd_ctx_reserve(gd_ctx *c, int i, size_t bytes);
void *gd_ctx_buf(gd_ctx *c, int i);
dnnl_status_t gd_bind_shared(gd_ctx *c, dnnl_memory_t m, int i);
dnnl_status_t gd_mem(dnnl_memory_t *m, gd_ctx *c, const dnnl_memory_desc_t *md, int allocate);
dnnl_status_t gd_prim_create(gd_prim *p, gd_ctx *c, const_dnnl_primitive_desc_t pd);
void gd_prim_destroy(gd_prim *p);
void gd_mem_destroy(dnnl_memory_t *m);
dnnl_status_t gd_bind(dnnl_memory_t m, void *ptr);
dnnl_status_t gd_unbind(const dnnl_memory_t *mems, size_t n);

// GD_FINISH ends an operation at label "out": it detaches the caller's
// buffers (status of the unbinding reported only when the operation itself
// succeeded) and returns the status.
#define GD_FINISH(unbind_status)                          \
	do {                                                  \
		dnnl_status_t ust_ = (unbind_status);             \
		if (st == dnnl_success && ust_ != dnnl_success) { \
			st = ust_;                                    \
			c->where = "unbind buffers";                    \
		}                                                 \
		return st;                                        \
	} while (0)
dnnl_status_t gd_exec(gd_ctx *c, gd_prim *p, int nargs, dnnl_exec_arg_t *args);
dnnl_status_t gd_reorder_create(gd_prim *p, gd_ctx *c, const dnnl_memory_desc_t *src,
	const dnnl_memory_desc_t *dst);
dnnl_status_t gd_reorder(gd_ctx *c, gd_prim *p, dnnl_memory_t src, dnnl_memory_t dst);

#endif
