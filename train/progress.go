package train

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/corinfomax/corinfomax/ssl"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress shows a run's advance: a progress bar with images/s, the loss
// components and the ETA on a terminal, plain log lines otherwise.
type Progress interface {
	Step(step int, res ssl.Result, imagesPerSec float64)
	Note(msg string)
	Finish()
}

func newProgress(w io.Writer, total, done int) Progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30), progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
		_ = bar.Set(done)
		return &barProgress{bar: bar, w: w}
	}
	return &logProgress{w: w, total: total, start: time.Now(), done0: done, every: max(1, total/100)}
}

type barProgress struct {
	bar *progressbar.ProgressBar
	w   io.Writer
}

func (p *barProgress) Step(step int, res ssl.Result, ips float64) {
	p.bar.Describe(fmt.Sprintf("%s %.0f img/s", describe(res), ips))
	_ = p.bar.Set(step)
}

func (p *barProgress) Note(msg string) {
	_ = p.bar.Clear()
	fmt.Fprintln(p.w, msg)
}

func (p *barProgress) Finish() { _ = p.bar.Finish() }

type logProgress struct {
	w            io.Writer
	total, done0 int
	every        int
	start        time.Time
}

func (p *logProgress) Step(step int, res ssl.Result, ips float64) {
	if step%p.every != 0 && step != p.total && step != p.done0+1 {
		return
	}
	eta := ""
	if n := step - p.done0; n > 0 {
		left := time.Duration(float64(time.Since(p.start)) / float64(n) * float64(p.total-step))
		eta = " eta " + left.Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "step %d/%d %s %.0f img/s%s\n", step, p.total, describe(res), ips, eta)
}

func (p *logProgress) Note(msg string) { fmt.Fprintln(p.w, msg) }
func (p *logProgress) Finish()         {}

func describe(res ssl.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "loss %.4f", res.Loss)
	for _, c := range res.Components {
		fmt.Fprintf(&b, " %s %.4f", c.Name, c.Value)
	}
	return b.String()
}
