package train

import (
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/corinfomax/corinfomax/eval"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/backends"
	"github.com/corinfomax/corinfomax/optim"
	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/tensor"
)

// BenchmarkOnlineProbeCost measures what --online-probe adds to a training
// step at the demo's shape (ResNet-18 w16, 1 x 28 x 28, batch 256 per
// view, projector 512-512-64, CorInfoMax, dnnl, all cores): the steps
// alternate between without and with the probe (the first view's features
// kept and the probe's SGD step) in one process, so that the machine's
// drift affects both alike. It reports the median of each, and the
// overhead in percent as the median over the pairs of (with - without) /
// without, the two steps of a pair being adjacent in time (go test ./train
// -run XXX -bench OnlineProbeCost -benchtime 10x: b.N pairs).
func BenchmarkOnlineProbeCost(b *testing.B) {
	be, err := backends.New("dnnl", 0, "fp32")
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	rng := rand.New(rand.NewSource(1))
	net, err := model.NewNetwork(be, model.Spec{Arch: "resnet18", Stem: "cifar", Width: 16, InChannels: 1,
		Projector: "512-512-64", ZeroInit: true}, rng)
	if err != nil {
		b.Fatal(err)
	}
	method, err := ssl.New(ssl.NameCorInfoMax, ssl.Options{})
	if err != nil {
		b.Fatal(err)
	}
	st := NewStep(net, method, optim.NewSGD(net.Params(), 0.9, 1e-4, false))
	probe, err := eval.NewOnlineLinear(net.Backbone.FeatureDim(), 10, rand.New(rand.NewSource(2)))
	if err != nil {
		b.Fatal(err)
	}
	const n = 256
	var x [2]*tensor.Tensor
	for v := range x {
		x[v] = tensor.New(n, 28, 28, 1)
		for i := range x[v].Data {
			x[v].Data[i] = float32(rng.NormFloat64())
		}
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = rng.Intn(10)
	}
	var off, on []float64
	step := 0
	run := func(withProbe bool) error {
		step++
		st.KeepFeatures = withProbe
		start := time.Now()
		if _, err := st.Run(step, x, 0.01); err != nil {
			return err
		}
		if withProbe {
			if _, err := probe.Step(st.Features().Data, n, labels); err != nil {
				return err
			}
		}
		d := time.Since(start).Seconds()
		if step > 2 { // warm-up: primitive creation, first-touch of buffers
			if withProbe {
				on = append(on, d)
			} else {
				off = append(off, d)
			}
		}
		return nil
	}
	b.ResetTimer()
	err = ops.OnComputeThread(be, func(string) error {
		for i := 0; i < b.N+1; i++ {
			// Alternate the order within pairs too (ABBA).
			first := i%2 == 0
			if err := run(!first); err != nil {
				return err
			}
			if err := run(first); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	med := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	mOff, mOn := med(off), med(on)
	rel := make([]float64, min(len(on), len(off)))
	for i := range rel {
		rel[i] = (on[i] - off[i]) / off[i]
	}
	b.Logf("without: %.3f s, with: %.3f s", off, on)
	b.ReportMetric(mOff*1e3, "ms/step-without")
	b.ReportMetric(mOn*1e3, "ms/step-with")
	b.ReportMetric(100*med(rel), "%overhead")
}
