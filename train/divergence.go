package train

import (
	"fmt"

	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/tensor"
)

// snapshot is what a step changes besides the weights before its update:
// the batch-norm running statistics (forward passes in training mode) and
// the method's running state (CorInfoMax's R and mu advance when its loss
// succeeds, even if the gradient then turns out non-finite). --on-nan skip
// restores it.
type snapshot struct {
	buffers []*tensor.Tensor
	method  []ssl.StateTensor
	stateOK bool // method is stateful and had state when taken
}

// buffersOf lists the buffers of nets in order.
func buffersOf(nets []*nn.Network) []*nn.Buffer {
	var bufs []*nn.Buffer
	for _, n := range nets {
		bufs = append(bufs, n.Buffers()...)
	}
	return bufs
}

// take records the buffers of nets (the online network, and the momentum
// network if any) and method's running state.
func (s *snapshot) take(method ssl.Objective, nets ...*nn.Network) {
	bufs := buffersOf(nets)
	if len(s.buffers) != len(bufs) {
		s.buffers = make([]*tensor.Tensor, len(bufs))
	}
	for i, b := range bufs {
		s.buffers[i] = tensor.Ensure(s.buffers[i], b.Value.Shape...)
		copy(s.buffers[i].Data, b.Value.Data)
	}
	s.method, s.stateOK = nil, false
	if st, ok := method.(ssl.Stateful); ok {
		s.method = st.State()
		s.stateOK = s.method != nil
	}
}

// restore puts the recorded buffers and running state back.
func (s *snapshot) restore(method ssl.Objective, nets ...*nn.Network) error {
	for i, b := range buffersOf(nets) {
		copy(b.Value.Data, s.buffers[i].Data)
	}
	if st, ok := method.(ssl.Stateful); ok && s.stateOK {
		if err := st.SetState(s.method); err != nil {
			return fmt.Errorf("restoring the %s state: %w", method.Name(), err)
		}
	}
	return nil
}

// lastGood names the checkpoint a diverged run can be resumed from.
func (t *Trainer) lastGood() string {
	if !t.dir.HasCheckpoint() {
		return "no checkpoint was written yet"
	}
	return "the last good checkpoint is " + t.dir.Checkpoint()
}
