package ssl

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
)

// NameMoCoV2 is MoCo v2+'s registered name.
const NameMoCoV2 = "mocov2"

// MoCoQueueSeed seeds the initial queues of MoCoV2: queue v (1 or 2) is
// NewQueue(queue_size, d, MoCoQueueSeed, v). The seed is fixed (not the
// run's), so every run starts from the same queues and is reproducible.
const MoCoQueueSeed = 0x4d6f436f // "MoCo"

// MoCoV2Config holds MoCo v2+'s hyper-parameters: QueueSize is the number
// K of past keys each view's queue holds, Temperature the temperature of
// the InfoNCE softmax. Gather gathers the inputs across data-parallel
// workers (nil: one worker).
type MoCoV2Config struct {
	QueueSize   int
	Temperature float64
	Gather      GatherFunc
}

var mocoV2Registration = Registration{
	Name:    NameMoCoV2,
	Summary: "momentum contrast v2+: InfoNCE of a query against its momentum key and a queue of past keys, symmetrised (Chen et al., 2020)",
	Options: []Option{
		{Name: "queue_size", Flag: "queue-size", Kind: Int, Default: 32768, Help: "past keys held in each view's queue of negatives, >= 1 and >= the global batch"},
		{Name: "moco_temperature", Flag: "moco-temperature", Default: 0.2, Help: "temperature of MoCo's InfoNCE softmax, > 0"},
	},
	NewTargeted: func(o Options) (Targeted, error) {
		r := resolved{vals: o.Values}
		return NewMoCoV2(MoCoV2Config{QueueSize: r.int("queue_size"), Temperature: r.float("moco_temperature"), Gather: o.Gather})
	},
	Branches: Branches{Predictor: false, Momentum: true},
}

// MoCoV2 is momentum contrast, MoCo v2 of Chen et al., "Improved Baselines
// with Momentum Contrastive Learning" (arXiv:2003.04297, 2020), in the
// symmetrised form of solo-learn's mocov2plus (solo/methods/mocov2plus.py,
// solo/losses/mocov2plus.py). The online output o_v of a view is the
// online projector output (no predictor), its target t_v the momentum
// network's projector output of the same view. With queries
// q_v = normalize(o_v) and keys k_v = normalize(t_v) (rows L2-normalised
// as F.normalize does), and queue_v the K most recent keys of view v,
//
//	nce(q, k, Q) = (1/N) sum_i CE([q_i·k_i, q_i·Q_1, ..., q_i·Q_K] / T, target 0)
//	L = ( nce(q1, k2, queue_2) + nce(q2, k1, queue_1) ) / 2
//
// The keys get no gradient. After a successful call the (gathered, global,
// in worker order) rows of k1 are enqueued into queue_1 and those of k2
// into queue_2 at the shared write pointer, which advances by one per row
// modulo K (a ring: solo-learn asserts K % batch == 0, here any batch up
// to K works; a larger global batch is an error). The queues are held in
// float32 like solo-learn's buffer.
//
// The queues start as rows drawn from N(0, I) and L2-normalised (solo-
// learn's torch.randn + F.normalize), from a fixed-seed generator
// (MoCoQueueSeed); they are allocated at the first call, when d is known,
// or by SetState. A later call with another d is an error.
//
// The two products with the queue (the N x K similarities and their
// gradient, N K d each) run in float32 through blas32, and so with the fast
// sgemm the corinfomax command plugs into it, as SimCLR's do; the
// normalisation, the positives, the softmax and the loss accumulate in
// float64. Component: "nce". Defaults: queue_size 32768, moco_temperature
// 0.2 (solo-learn's scripts/pretrain/cifar/mocov2plus.yaml).
type MoCoV2 struct {
	opts  MoCoV2Config
	queue [2]*Queue // queue[v] holds the keys of view v+1; nil before the first call or SetState
	exact bool      // float64 products (tests), see SimCLR
	sims  []float32 // the N x K similarities of the float32 path, reused across calls
}

// NewMoCoV2 validates opts and returns a MoCoV2 whose queues are allocated
// at the first call.
func NewMoCoV2(opts MoCoV2Config) (*MoCoV2, error) {
	switch {
	case opts.QueueSize < 1:
		return nil, optErr(NameMoCoV2, "queue_size", opts.QueueSize, ">= 1")
	case !(opts.Temperature > 0) || math.IsInf(opts.Temperature, 0):
		return nil, optErr(NameMoCoV2, "moco_temperature", opts.Temperature, "finite and > 0")
	}
	return &MoCoV2{opts: opts}, nil
}

// Name returns "mocov2".
func (m *MoCoV2) Name() string { return NameMoCoV2 }

// Branches returns a momentum network and no predictor.
func (m *MoCoV2) Branches() Branches { return Branches{Momentum: true} }

// TargetLoss implements Targeted. The queues change only when it succeeds.
func (m *MoCoV2) TargetLoss(step int, o1, o2, t1, t2 []float32, n, d int, g1, g2 []float32) (Result, error) {
	var queues [2]*Queue
	var keys [2][]float64
	var nk int
	res, err := runTargetLoss(NameMoCoV2, step, o1, o2, t1, t2, n, d, g1, g2, m.opts.Gather,
		func(o1, o2, t1, t2 []float64, n, d int, g1, g2 []float64) (Result, error) {
			qs, err := m.current(n, d)
			if err != nil {
				return Result{}, err
			}
			res, k1, k2 := m.eval(qs, o1, o2, t1, t2, n, d, g1, g2)
			queues, keys, nk = qs, [2][]float64{k1, k2}, n
			return res, nil
		})
	if err != nil {
		return Result{}, err
	}
	// Enqueue cannot fail here: nk <= K and the keys are finite (checked).
	for v, q := range queues {
		if err := q.Enqueue(keys[v], nk); err != nil {
			return Result{}, fmt.Errorf("%s: step %d: enqueue the keys of view %d: %w", NameMoCoV2, step, v+1, err)
		}
	}
	m.queue = queues
	return res, nil
}

// current returns the queues for a global batch of n rows of dimension d:
// the running ones, or fresh initial ones before the first call.
func (m *MoCoV2) current(n, d int) ([2]*Queue, error) {
	k := m.opts.QueueSize
	if n > k {
		return [2]*Queue{}, fmt.Errorf("global batch of %d rows exceeds queue_size %d: its keys would overwrite each other in the queue", n, k)
	}
	if m.queue[0] == nil {
		var qs [2]*Queue
		for v := range qs {
			q, err := NewQueue(k, d, MoCoQueueSeed, uint64(v+1))
			if err != nil {
				return [2]*Queue{}, err
			}
			qs[v] = q
		}
		return qs, nil
	}
	if qd := m.queue[0].Dim(); d != qd {
		return [2]*Queue{}, fmt.Errorf("feature dimension %d differs from the queue's %d (fixed by the first step or by SetState)", d, qd)
	}
	return m.queue, nil
}

// eval is the float64 core of TargetLoss against the queues qs (not
// modified): it returns the result and the keys k1, k2 to enqueue.
func (m *MoCoV2) eval(qs [2]*Queue, o1, o2, t1, t2 []float64, n, d int, g1, g2 []float64) (Result, []float64, []float64) {
	q1, n1 := normalizeRows(o1, n, d)
	q2, n2 := normalizeRows(o2, n, d)
	k1, _ := normalizeRows(t1, n, d)
	k2, _ := normalizeRows(t2, n, d)
	l1, gq1 := m.nce(q1, k2, qs[1], n, d)
	l2, gq2 := m.nce(q2, k1, qs[0], n, d)
	loss := (l1 + l2) / 2
	for i := range gq1 {
		gq1[i] /= 2
		gq2[i] /= 2
	}
	normalizeRowsBackward(q1, n1, gq1, n, d, g1)
	normalizeRowsBackward(q2, n2, gq2, n, d, g2)
	return Result{Loss: loss, Components: []Component{{Name: "nce", Value: loss}}}, k1, k2
}

// nce returns nce(q, k, queue) and its gradient with respect to q.
func (m *MoCoV2) nce(q, k []float64, queue *Queue, n, d int) (float64, []float64) {
	pos := make([]float64, n)
	for i := range pos {
		s := 0.0
		for j := i * d; j < (i+1)*d; j++ {
			s += q[j] * k[j]
		}
		pos[i] = s
	}
	var loss float64
	var gq, dpos []float64
	if m.exact {
		loss, gq, dpos = queueNCE(q, pos, to64(queue.rows), n, queue.size, d, m.opts.Temperature, gemm64, nil, math.Exp)
	} else {
		if len(m.sims) < n*queue.size {
			m.sims = make([]float32, n*queue.size)
		}
		loss, gq, dpos = queueNCE(round32(q), pos, queue.rows, n, queue.size, d, m.opts.Temperature, gemm32, m.sims[:n*queue.size], expNonPos)
	}
	// The positive logit q_i·k_i adds dpos_i k_i.
	for i, g := range dpos {
		for j := i * d; j < (i+1)*d; j++ {
			gq[j] += g * k[j]
		}
	}
	return loss, gq
}

// queueNCE is the InfoNCE of the n unit rows q (T is the precision of the
// two products with the kq x d negatives neg) given the positive
// similarities pos: it returns the mean cross-entropy of the logits
// [pos_i, q_i·neg_1, ..., q_i·neg_kq] / temp against class 0, its gradient
// with respect to q through the negatives (float64, n x d), and dL/dpos.
// The rows' softmaxes are split over goroutines (forRowBlocks); the loss
// is summed in row order afterwards, so the result does not depend on the
// split. sm, when not nil, is n x kq scratch (every entry overwritten);
// exp computes e^x for the x <= 0 of the softmax (math.Exp, or expNonPos
// on the float32 path).
func queueNCE[T float32 | float64](q []T, pos []float64, neg []T, n, kq, d int, temp float64, gemm gemmFunc[T], sm []T,
	exp func(float64) float64) (float64, []float64, []float64) {
	invT := 1 / temp
	// S = q neg^T / T, then overwritten row by row with dL/dS = P / n;
	// sm (n x kq) is the caller's scratch, or nil for a new one.
	if sm == nil {
		sm = make([]T, n*kq)
	}
	gemm(blas.NoTrans, blas.Trans, n, kq, d, invT, q, neg, 0, sm)
	rowLoss, dpos := make([]float64, n), make([]float64, n)
	softmaxRows := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := sm[i*kq : (i+1)*kq]
			lp := pos[i] * invT
			mx := lp
			for _, v := range row {
				if float64(v) > mx { // the logits are finite: no math.Max needed
					mx = float64(v)
				}
			}
			ep := exp(lp - mx)
			sum := ep
			for j, v := range row {
				e := exp(float64(v) - mx)
				sum += e
				row[j] = T(e)
			}
			rowLoss[i] = mx + math.Log(sum) - lp
			c := 1 / (sum * float64(n))
			for j, v := range row {
				row[j] = T(float64(v) * c)
			}
			dpos[i] = (ep*c - 1/float64(n)) * invT
		}
	}
	forRowBlocks(n, softmaxRows)
	loss := meanInOrder(rowLoss)

	// dL/dq through the negatives = (dL/dS) neg / T.
	g := make([]T, n*d)
	gemm(blas.NoTrans, blas.NoTrans, n, d, kq, invT, sm, neg, 0, g)
	gq := make([]float64, n*d)
	for i, v := range g {
		gq[i] = float64(v)
	}
	return loss, gq, dpos
}

// expNonPos returns e^x for x <= 0 to within 2e-7 relative (0 below -80):
// x = k ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor polynomial of
// degree 6, times 2^k from the exponent bits. About three times faster
// than math.Exp; the float32 path of MoCo's softmax stores its results in
// float32 (relative precision 6e-8) anyway, and its N x K exponentials
// were most of the objective's time.
func expNonPos(x float64) float64 {
	if x < -80 {
		return 0
	}
	k := int(x*math.Log2E - 0.5) // rounds x log2(e) to the nearest integer (x <= 0)
	r := x - float64(k)*math.Ln2
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
	return p * math.Float64frombits(uint64(k+1023)<<52)
}

// State returns copies of the running state: "queue1" and "queue2" (the
// keys of views 1 and 2, [queue_size, d], in storage order) and
// "queue_ptr" ([1], the write pointer). It returns nil before the first
// successful call or SetState: the state is then the initial one, which
// the first call draws from MoCoQueueSeed.
func (m *MoCoV2) State() []StateTensor {
	if m.queue[0] == nil {
		return nil
	}
	return []StateTensor{
		m.queue[0].StateTensor("queue1"),
		m.queue[1].StateTensor("queue2"),
		pointerTensor("queue_ptr", m.queue[0].Ptr()),
	}
}

// SetState replaces the queues by copies of the given tensors (rounded to
// float32): exactly "queue1" and "queue2" ([queue_size, d], one d, finite)
// and "queue_ptr" ([1], an integer in [0, queue_size)), as State returns
// them. An empty list restores the initial state (State's nil). It works
// before the first call (d is then taken from the queues); afterwards d
// must be the one in use. The state is unchanged on error.
func (m *MoCoV2) SetState(ts []StateTensor) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s: SetState: %s", NameMoCoV2, fmt.Sprintf(format, a...))
	}
	if len(ts) == 0 {
		m.queue = [2]*Queue{}
		return nil
	}
	byName := map[string]StateTensor{}
	for _, t := range ts {
		switch t.Name {
		case "queue1", "queue2", "queue_ptr":
		default:
			return fail("unknown state tensor %q (want queue1, queue2, queue_ptr)", t.Name)
		}
		if _, dup := byName[t.Name]; dup {
			return fail("duplicate state tensor %q", t.Name)
		}
		byName[t.Name] = t
	}
	for _, name := range []string{"queue1", "queue2", "queue_ptr"} {
		if _, ok := byName[name]; !ok {
			return fail("missing state tensor %q", name)
		}
	}
	k := m.opts.QueueSize
	ptr, err := pointerFromState(byName["queue_ptr"], k)
	if err != nil {
		return fail("%v", err)
	}
	var next [2]*Queue
	for v := range next {
		t := byName[fmt.Sprintf("queue%d", v+1)]
		if len(t.Shape) != 2 || t.Shape[0] != k {
			return fail("%s has shape %v, want [queue_size, d] with queue_size %d", t.Name, t.Shape, k)
		}
		if v == 1 && t.Shape[1] != next[0].Dim() {
			return fail("queue2 has d=%d, queue1 d=%d", t.Shape[1], next[0].Dim())
		}
		if m.queue[0] != nil && t.Shape[1] != m.queue[0].Dim() {
			return fail("%s has d=%d, but this MoCoV2 already runs with d=%d", t.Name, t.Shape[1], m.queue[0].Dim())
		}
		if next[v], err = QueueFromState(t, ptr); err != nil {
			return fail("%v", err)
		}
	}
	m.queue = next
	return nil
}
