package data

import (
	"fmt"
	"strings"
)

// Norm holds the per-channel normalisation x' = (x - Mean[c]) / Std[c]
// applied to pixels in [0, 1].
type Norm struct {
	Mean, Std []float32
}

// Published normalisation constants (docs/design.md section 2).
var (
	fashionMean, fashionStd   = []float32{0.2860}, []float32{0.3530}
	mnistMean, mnistStd       = []float32{0.1307}, []float32{0.3081}
	cifar10Mean, cifar10Std   = []float32{0.4914, 0.4822, 0.4465}, []float32{0.247, 0.243, 0.261}
	cifar100Mean, cifar100Std = []float32{0.5071, 0.4865, 0.4409}, []float32{0.2673, 0.2564, 0.2762}
	imagenetMean, imagenetStd = []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}
	greyMean, greyStd         = []float32{0.5}, []float32{0.25}
)

// DefaultNorm returns the normalisation for a dataset spec ("KIND:PATH" or
// "KIND") and channel count: Fashion-MNIST 0.2860/0.3530, MNIST
// 0.1307/0.3081, CIFAR-10 and CIFAR-100 their published constants, and for
// stl10, folder, npy and unknown kinds the ImageNet constants (3 channels)
// or 0.5/0.25 (1 channel). A single-channel constant asked for 3 channels is
// repeated; 3-channel constants asked for 1 channel are averaged.
func DefaultNorm(spec string, channels int) Norm {
	kind, _, _ := strings.Cut(spec, ":")
	kind = strings.ToLower(strings.TrimSpace(kind))
	var m, s []float32
	switch kind {
	case "fashion-mnist":
		m, s = fashionMean, fashionStd
	case "mnist":
		m, s = mnistMean, mnistStd
	case "cifar10":
		m, s = cifar10Mean, cifar10Std
	case "cifar100", "cifar100-coarse":
		m, s = cifar100Mean, cifar100Std
	default:
		if channels == 1 {
			m, s = greyMean, greyStd
		} else {
			m, s = imagenetMean, imagenetStd
		}
	}
	return Norm{Mean: fitChannels(m, channels), Std: fitChannels(s, channels)}
}

// fitChannels repeats or averages constants to the channel count.
func fitChannels(v []float32, c int) []float32 {
	out := make([]float32, c)
	switch {
	case len(v) == c:
		copy(out, v)
	case len(v) == 1:
		for i := range out {
			out[i] = v[0]
		}
	default:
		var sum float32
		for _, x := range v {
			sum += x
		}
		for i := range out {
			out[i] = sum / float32(len(v))
		}
	}
	return out
}

// ResolveNorm returns the normalisation of a run: mean and std when given
// (one value per channel each), else DefaultNorm(spec, channels).
func ResolveNorm(spec string, channels int, mean, std []float32) (Norm, error) {
	if len(mean) == 0 && len(std) == 0 {
		return DefaultNorm(spec, channels), nil
	}
	if len(mean) != channels || len(std) != channels {
		return Norm{}, fmt.Errorf("mean and std need %d values each (one per channel), got %d and %d",
			channels, len(mean), len(std))
	}
	for c, s := range std {
		if !(s > 0) {
			return Norm{}, fmt.Errorf("std of channel %d is %v, want > 0", c, s)
		}
	}
	return Norm{Mean: append([]float32(nil), mean...), Std: append([]float32(nil), std...)}, nil
}
