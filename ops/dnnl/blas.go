package dnnl

/*
#include "gd.h"
*/
import "C"

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BLAS32 is gonum's float32 BLAS with Sgemm replaced by oneDNN's
// (dnnl_sgemm, several times faster than the pure-Go kernel on AVX-512).
// A program opts in with blas32.Use(dnnl.BLAS32{}); the library packages
// keep calling gonum's blas32 and work unchanged without it. Sgemm runs on
// the OpenMP threads of the last Backend used (all cores by default).
type BLAS32 struct {
	gonum.Implementation
}

// Sgemm computes C = alpha * op(A) * op(B) + beta * C on row-major
// matrices, as blas.Float32Level3 defines it.
func (BLAS32) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || len(a) == 0 || len(b) == 0 {
		gonum.Implementation{}.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	ta, tb := byte('N'), byte('N')
	if tA != blas.NoTrans {
		ta = 'T'
	}
	if tB != blas.NoTrans {
		tb = 'T'
	}
	// Bounds as gonum checks them, so a bad call panics here (as the blas
	// interface specifies) instead of reading out of bounds in C.
	rowsA, colsA := m, k
	if ta == 'T' {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if tb == 'T' {
		rowsB, colsB = n, k
	}
	if lda < max(1, colsA) || ldb < max(1, colsB) || ldc < max(1, n) ||
		len(a) < lda*(rowsA-1)+colsA || len(b) < ldb*(rowsB-1)+colsB || len(c) < ldc*(m-1)+n {
		panic(fmt.Sprintf("dnnl: Sgemm: bad dimensions m=%d n=%d k=%d lda=%d ldb=%d ldc=%d", m, n, k, lda, ldb, ldc))
	}
	st := C.dnnl_sgemm(C.char(ta), C.char(tb), C.dnnl_dim_t(m), C.dnnl_dim_t(n), C.dnnl_dim_t(k), C.float(alpha),
		(*C.float)(&a[0]), C.dnnl_dim_t(lda), (*C.float)(&b[0]), C.dnnl_dim_t(ldb), C.float(beta),
		(*C.float)(&c[0]), C.dnnl_dim_t(ldc))
	if st != C.dnnl_success {
		panic(fmt.Sprintf("dnnl: Sgemm: status %d", int(st)))
	}
}
