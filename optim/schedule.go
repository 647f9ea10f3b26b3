package optim

import "math"

// Schedule is a learning-rate schedule: linear warm-up from WarmupStart to
// Base, then cosine annealing to Min, exactly as solo-learn's
// LinearWarmupCosineAnnealingLR (closed form) with t counted from 0 (epochs
// or steps, whichever unit the caller steps it in):
//
//	t < W:  WarmupStart + t * (Base - WarmupStart) / max(1, W - 1)
//	t >= W: Min + (Base - Min) * (1 + cos(pi * (t - W) / (T - W))) / 2
//
// with W = WarmupSteps and T = TotalSteps. The warm-up reaches Base at
// t = W - 1 (solo-learn divides by W - 1), and t = W is Base again. Values
// for t >= T are Min (solo-learn's cosine would rise again past T). If
// T <= W the schedule stays at Base after warm-up.
type Schedule struct {
	Base, WarmupStart, Min  float64
	WarmupSteps, TotalSteps int
}

// Constant returns a schedule that is lr at every t.
func Constant(lr float64) Schedule {
	return Schedule{Base: lr, WarmupStart: lr, Min: lr}
}

// At returns the learning rate at t.
func (s Schedule) At(t int) float64 {
	if t < 0 {
		t = 0
	}
	w := s.WarmupSteps
	if t < w {
		return s.WarmupStart + float64(t)*(s.Base-s.WarmupStart)/float64(max(1, w-1))
	}
	if s.TotalSteps <= w {
		return s.Base
	}
	if t >= s.TotalSteps {
		return s.Min
	}
	frac := float64(t-w) / float64(s.TotalSteps-w)
	return s.Min + (s.Base-s.Min)*(1+math.Cos(math.Pi*frac))/2
}
