package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
)

// LoaderConfig configures a Loader.
type LoaderConfig struct {
	Batch    int   // images per batch (> 0)
	Workers  int   // goroutines decoding and augmenting batches (0 means 1)
	Seed     int64 // seeds the shuffle and every sample's augmentation
	Shuffle  bool  // a fresh permutation per epoch, seeded by (Seed, epoch)
	DropLast bool  // drop the final partial batch
	Views    int   // 1 or 2 outputs per image
	Pipeline Pipeline
	// Eval replaces the augmentation by the deterministic evaluation
	// transform (Augmenter.Eval at Pipeline.Views[0].Size) for every view.
	Eval bool
	// Shards > 1 splits every batch among data-parallel workers: this
	// loader yields only the Shard-th of Shards equal slices (Batch/Shards
	// images) of each batch. The permutation and every sample's
	// augmentation are those of the whole batch, so the workers together
	// see exactly the images one loader with Shards = 1 would. Batch must
	// be a multiple of Shards, and DropLast is required.
	Shard, Shards int
}

// Batch is one batch of augmented views. X[v] holds view v as NHWC float32
// (N*H*W*C values); X[1] is nil when the loader makes one view. Labels are
// -1 for unlabelled data; Indices are the dataset indices of the images.
//
// A Batch and its slices are owned by the loader and reused: they are valid
// until the following call of EpochIter.Next or EpochIter.Close. Copy what
// must outlive that.
type Batch struct {
	X          [2][]float32
	N, H, W, C int
	Labels     []int
	Indices    []int
}

// Loader produces shuffled, augmented, deterministic batches of a Dataset.
// The batches of an epoch depend only on (dataset, config, epoch), not on
// Workers or timing: each sample's randomness comes from an RNG seeded by
// (Seed, epoch, position of the sample in the epoch).
type Loader struct {
	ds    Dataset
	cfg   LoaderConfig
	h, w  int
	c     int
	steps int
}

// NewLoader validates cfg against ds and returns a Loader. A view Size <= 0
// (allowed for Identity and Eval) means the native size of the dataset's
// first image, which all images must then share.
func NewLoader(ds Dataset, cfg LoaderConfig) (*Loader, error) {
	if ds == nil || ds.Len() == 0 {
		return nil, errors.New("data: loader needs a non-empty dataset")
	}
	if cfg.Batch <= 0 {
		return nil, fmt.Errorf("data: batch size %d must be positive", cfg.Batch)
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("data: workers %d must be non-negative", cfg.Workers)
	}
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.Shards == 0 {
		cfg.Shards = 1
	}
	if cfg.Shards < 1 || cfg.Shard < 0 || cfg.Shard >= cfg.Shards {
		return nil, fmt.Errorf("data: shard %d of %d is not a shard", cfg.Shard, cfg.Shards)
	}
	if cfg.Shards > 1 && (cfg.Batch%cfg.Shards != 0 || !cfg.DropLast) {
		return nil, fmt.Errorf("data: a batch of %d cannot be split evenly among %d workers (the batch must be a multiple of the number of workers)", cfg.Batch, cfg.Shards)
	}
	if cfg.Views != 1 && cfg.Views != 2 {
		return nil, fmt.Errorf("data: views %d must be 1 or 2", cfg.Views)
	}
	l := &Loader{ds: ds, cfg: cfg, c: ds.Channels()}
	p := cfg.Pipeline
	if len(p.Norm.Mean) != l.c || len(p.Norm.Std) != l.c {
		return nil, fmt.Errorf("data: normalisation has %d means and %d stds for %d channels", len(p.Norm.Mean), len(p.Norm.Std), l.c)
	}
	size := p.Views[0].Size
	if !cfg.Eval {
		if err := p.Validate(l.c); err != nil {
			return nil, err
		}
		if cfg.Views == 2 && p.Views[1].Size != size {
			return nil, fmt.Errorf("data: view sizes %d and %d differ", size, p.Views[1].Size)
		}
	} else {
		// Only the normalisation matters in eval mode.
		for i, s := range p.Norm.Std {
			if !(s > 0) {
				return nil, fmt.Errorf("data: normalisation std[%d] = %g must be positive", i, s)
			}
		}
	}
	if size > 0 {
		l.h, l.w = size, size
	} else {
		var im Image
		if err := ds.Image(0, &im); err != nil {
			return nil, fmt.Errorf("data: reading image 0 for its size: %w", err)
		}
		l.h, l.w = im.H, im.W
	}
	n := ds.Len()
	if cfg.DropLast {
		l.steps = n / cfg.Batch
		if l.steps == 0 {
			return nil, fmt.Errorf("data: %s has %d images, fewer than one batch of %d with drop-last", ds.Name(), n, cfg.Batch)
		}
	} else {
		l.steps = (n + cfg.Batch - 1) / cfg.Batch
	}
	return l, nil
}

// ShardBatch returns the number of images of this loader's part of a
// batch: Batch/Shards.
func (l *Loader) ShardBatch() int { return l.cfg.Batch / l.cfg.Shards }

// StepsPerEpoch returns the number of batches in an epoch.
func (l *Loader) StepsPerEpoch() int { return l.steps }

// Dataset returns the loader's dataset.
func (l *Loader) Dataset() Dataset { return l.ds }

// OutputShape returns the H, W, C of every view.
func (l *Loader) OutputShape() (h, w, c int) { return l.h, l.w, l.c }

// splitmix64 is a 64-bit mixing function (SplitMix64 finaliser).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// streamSeed derives a PCG seed pair from (seed, epoch, position, salt).
func streamSeed(seed int64, epoch, pos int, salt uint64) (uint64, uint64) {
	a := splitmix64(uint64(seed) ^ salt)
	b := splitmix64(a ^ uint64(int64(epoch)))
	c := splitmix64(b ^ uint64(int64(pos)))
	return c, splitmix64(c ^ 0x5851f42d4c957f2d)
}

const (
	saltShuffle = 0x73687566666c65 // "shuffle"
	saltSample  = 0x73616d706c65   // "sample"
)

// order returns the dataset index of every position of the epoch.
func (l *Loader) order(epoch int) []int {
	n := l.ds.Len()
	if !l.cfg.Shuffle {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	s1, s2 := streamSeed(l.cfg.Seed, epoch, 0, saltShuffle)
	return rand.New(rand.NewPCG(s1, s2)).Perm(n)
}

// EpochIter iterates over the batches of one epoch. Its methods must be
// called from one goroutine.
type EpochIter struct {
	l       *Loader
	ctx     context.Context
	cancel  context.CancelFunc
	order   []int
	epoch   int
	pending chan *job
	free    chan *Batch
	wg      sync.WaitGroup
	cur     *Batch
	err     error
}

// job is one batch being filled by a worker.
type job struct {
	step int
	b    *Batch
	done chan error
}

// Epoch starts the iteration of epoch epoch (any integer; it seeds the
// shuffle and the augmentations), skipping the first startStep batches
// without decoding them (to resume mid-epoch). Worker goroutines prefetch
// up to Workers+2 batches ahead; they stop when ctx is cancelled or the
// iterator is closed. Always call Close.
func (l *Loader) Epoch(ctx context.Context, epoch int, startStep int) *EpochIter {
	cctx, cancel := context.WithCancel(ctx)
	it := &EpochIter{l: l, ctx: cctx, cancel: cancel, epoch: epoch}
	if startStep < 0 {
		it.err = fmt.Errorf("data: start step %d is negative", startStep)
		return it
	}
	it.order = l.order(epoch)
	q := l.cfg.Workers + 2
	it.pending = make(chan *job, q)
	it.free = make(chan *Batch, q)
	hwc := l.h * l.w * l.c
	per := l.ShardBatch()
	for i := 0; i < q; i++ {
		b := &Batch{H: l.h, W: l.w, C: l.c,
			Labels: make([]int, per), Indices: make([]int, per)}
		for v := 0; v < l.cfg.Views; v++ {
			b.X[v] = make([]float32, per*hwc)
		}
		it.free <- b
	}
	jobs := make(chan *job)
	it.wg.Add(1 + l.cfg.Workers)
	go func() { // producer: hands out steps in order
		defer it.wg.Done()
		defer close(jobs)
		defer close(it.pending)
		for step := startStep; step < l.steps; step++ {
			var b *Batch
			select {
			case b = <-it.free:
			case <-cctx.Done():
				return
			}
			j := &job{step: step, b: b, done: make(chan error, 1)}
			select {
			case it.pending <- j:
			case <-cctx.Done():
				return
			}
			select {
			case jobs <- j:
			case <-cctx.Done():
				return
			}
		}
	}()
	for w := 0; w < l.cfg.Workers; w++ {
		go func() {
			defer it.wg.Done()
			st := &workerState{aug: NewAugmenter(), pcg: rand.NewPCG(0, 0)}
			st.rng = rand.New(st.pcg)
			for j := range jobs {
				j.done <- it.fill(st, j)
			}
		}()
	}
	return it
}

// workerState is one worker's scratch.
type workerState struct {
	aug *Augmenter
	img Image
	pcg *rand.PCG
	rng *rand.Rand
}

// fill decodes and augments the images of j.step into j.b.
func (it *EpochIter) fill(st *workerState, j *job) error {
	l := it.l
	b := j.b
	per := l.ShardBatch()
	start := j.step*l.cfg.Batch + l.cfg.Shard*per
	n := min(per, len(it.order)-start)
	hwc := l.h * l.w * l.c
	b.N = n
	b.Labels = b.Labels[:n]
	b.Indices = b.Indices[:n]
	for v := 0; v < l.cfg.Views; v++ {
		b.X[v] = b.X[v][:n*hwc]
	}
	p := l.cfg.Pipeline
	for k := 0; k < n; k++ {
		if err := it.ctx.Err(); err != nil {
			return err
		}
		pos := start + k
		idx := it.order[pos]
		if err := l.ds.Image(idx, &st.img); err != nil {
			return fmt.Errorf("data: epoch %d step %d: %w", it.epoch, j.step, err)
		}
		st.pcg.Seed(streamSeed(l.cfg.Seed, it.epoch, pos, saltSample))
		for v := 0; v < l.cfg.Views; v++ {
			out := b.X[v][k*hwc : (k+1)*hwc]
			var h, w int
			var err error
			if l.cfg.Eval {
				h, w, err = st.aug.Eval(p.Views[0].Size, p.Norm, &st.img, out)
			} else {
				h, w, err = st.aug.View(st.rng, p.Views[v], p.Norm, &st.img, out)
			}
			if err == nil && (h != l.h || w != l.w) {
				err = fmt.Errorf("view is %dx%d, batch is %dx%d (images of different sizes need a view Size)", h, w, l.h, l.w)
			}
			if err != nil {
				return fmt.Errorf("data: %s image %d (epoch %d step %d): %w", l.ds.Name(), idx, it.epoch, j.step, err)
			}
		}
		b.Labels[k] = l.ds.Label(idx)
		b.Indices[k] = idx
	}
	return nil
}

// Next returns the next batch, io.EOF after the last one, or the first
// error met (a decoding error or the context's error). The returned Batch
// is reused: it is valid until the next call of Next or Close.
func (it *EpochIter) Next() (*Batch, error) {
	if it.err != nil {
		return nil, it.err
	}
	if err := it.ctx.Err(); err != nil {
		it.err = err
		return nil, err
	}
	if it.cur != nil {
		it.free <- it.cur // never blocks: free has room for every buffer
		it.cur = nil
	}
	var j *job
	var ok bool
	select {
	case j, ok = <-it.pending:
	case <-it.ctx.Done():
	}
	if j == nil {
		if err := it.ctx.Err(); err != nil {
			it.err = err
		} else if !ok {
			it.err = io.EOF
		}
		return nil, it.err
	}
	select {
	case err := <-j.done:
		if err != nil {
			it.err = err
			it.cancel()
			return nil, err
		}
	case <-it.ctx.Done():
		it.err = it.ctx.Err()
		return nil, it.err
	}
	it.cur = j.b
	return j.b, nil
}

// Close stops the workers and waits for them to exit. It is safe to call
// more than once.
func (it *EpochIter) Close() {
	it.cancel()
	it.wg.Wait()
	if it.err == nil {
		it.err = errors.New("data: epoch iterator closed")
	}
}
