package nn

import (
	"math"
	"math/rand"
)

// kaimingNormalFanOut fills w (a convolution weight OIHW with fanOut =
// O*KH*KW) from N(0, 2/fanOut): torch.nn.init.kaiming_normal_(w,
// mode="fan_out", nonlinearity="relu"), torchvision's ResNet convolution
// initialisation.
func kaimingNormalFanOut(w []float32, fanOut int, rng *rand.Rand) {
	std := math.Sqrt(2 / float64(fanOut))
	for i := range w {
		w[i] = float32(rng.NormFloat64() * std)
	}
}

// uniform fills w from U(-bound, bound). nn.Linear's default initialisation
// (kaiming_uniform_ with a = sqrt(5)) is U(-1/sqrt(in), 1/sqrt(in)) for the
// weight, and the bias uses the same bound.
func uniform(w []float32, bound float64, rng *rand.Rand) {
	for i := range w {
		w[i] = float32((2*rng.Float64() - 1) * bound)
	}
}

// fill sets every element of w to v.
func fill(w []float32, v float32) {
	for i := range w {
		w[i] = v
	}
}
