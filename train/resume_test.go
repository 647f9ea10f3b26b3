package train

import "testing"

// TestResumeEqualsUninterruptedTwoThreads is TestResumeEqualsUninterrupted
// at --threads 2: the bit-exact resume claimed for multi-threaded runs.
// oneDNN's kernels and gonum's parallel Gemm (CorInfoMax's Gram matrix) must
// then be deterministic run to run at a fixed thread count.
func TestResumeEqualsUninterruptedTwoThreads(t *testing.T) { resumeEqualsUninterrupted(t, 2) }
