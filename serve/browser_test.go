package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium (installed by .ci/run).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install chromium): the browser test needs it")
	return ""
}

// TestPagesInHeadlessChromium serves the tiny run on a loopback port and
// loads the three pages in headless Chromium over the DevTools protocol:
// the runs table and the comparison, the charts with the run's numbers,
// and the neighbour browser's images.
func TestPagesInHeadlessChromium(t *testing.T) {
	exe := chromium(t)
	root, _ := tinyRun(t)
	s, err := New(Options{Roots: []string{root}, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	// The numbers the charts must show: from the run itself.
	rr := httptest.NewRecorder()
	s.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/api/metrics?run=tiny", nil))
	var v map[string]any
	if err := json.Unmarshal(rr.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	var steps, epochs int
	var lastKNN float64
	for _, r := range v["records"].([]any) {
		rec := r.(map[string]any)
		switch rec["type"] {
		case "step":
			steps++
		case "epoch":
			epochs++
			lastKNN = rec["knn"].(map[string]any)["k20"].(float64)
		}
	}

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	attr := func(sel, name string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(sel, name))
		if err != nil || !v.Exists {
			t.Fatalf("attribute %s of %s: %v (exists %v)", name, sel, err, v.Exists)
		}
		return v.Value
	}

	// Runs page: the run, its state, and the comparison table.
	do("runs page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(`#runs tr[data-run="tiny"]`))
	state := text(`#runs tr[data-run="tiny"] [data-state]`)
	do("comparison", chromedp.Click(`input[data-run="tiny"]`), chromedp.Click(`#compare-button`),
		chromedp.WaitVisible(`#compare-table tbody tr`))
	cmpRows := text(`#compare-table tbody`)
	if state != "finished" || !strings.Contains(cmpRows, "tiny") || !strings.Contains(cmpRows, "corinfomax") {
		t.Errorf("runs page: state %q, comparison %q", state, cmpRows)
	}
	// Numbers align (and sort) as numbers, the projector "16-8" as text.
	align, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
		const cols = [...document.querySelectorAll("#compare-table th")].map(th => th.textContent);
		const cells = document.querySelectorAll("#compare-table tbody tr:first-child td");
		return ["projector", "epochs"].map(c => cells[cols.indexOf(c)].className);
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if align[0] != "" || align[1] != "num" {
		t.Errorf("comparison cell classes: projector %q (want text), epochs %q (want num)", align[0], align[1])
	}
	// On a narrow window the 13-column comparison scrolls inside its box:
	// the page itself stays as wide as the window.
	do("narrow window", chromedp.EmulateViewport(640, 900))
	widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth,
		document.querySelector("#compare-table").scrollWidth]`))
	if err != nil {
		t.Fatal(err)
	}
	if widths[0] > widths[1] || widths[2] <= widths[1] {
		t.Errorf("comparison on a 640-pixel window: page %d pixels wide, window %d, table %d (want the table wider than the window, scrolling in its box)",
			widths[0], widths[1], widths[2])
	}
	do("wide window", chromedp.EmulateViewport(1280, 900))

	// Run page: every chart drawn from the run's records.
	do("run page", chromedp.Navigate(base+"/run?run=tiny"), chromedp.WaitVisible(`body[data-loaded="1"]`),
		chromedp.WaitVisible(`#chart-loss svg polyline`))
	lossPoints := attr(`#chart-loss polyline`, "data-points")
	erankPoints := attr(`#chart-erank polyline`, "data-points")
	spectrumLines := attr(`#chart-spectrum svg`, "data-series")
	knnLegend := text(`#chart-knn .legend`)
	if lossPoints != fmt.Sprint(steps) || erankPoints != fmt.Sprint(epochs) || spectrumLines != fmt.Sprint(epochs) {
		t.Errorf("run page: loss chart %s points (want %d), effective rank %s (want %d), spectrum %s lines (want %d)",
			lossPoints, steps, erankPoints, epochs, spectrumLines, epochs)
	}
	if want := fmt.Sprintf("kNN k=20 %.2f", lastKNN); !strings.Contains(knnLegend, want) {
		t.Errorf("kNN chart legend %q, want %q", knnLegend, want)
	}

	// Neighbour browser: test image 4's neighbours, as loaded images.
	do("neighbours page", chromedp.Navigate(base+"/neighbours?run=tiny&index=4"),
		chromedp.WaitVisible(`body[data-searched="1"]`))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`[...document.querySelectorAll("#nb-features img, #nb-pixels img, #test-images img")].every(i => i.complete)`)); err != nil {
		t.Fatalf("neighbours page images: %v", err)
	}
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.querySelectorAll("#test-images img").length,
		[...document.querySelectorAll("#nb-features img")].filter(i => i.naturalWidth === 12).length,
		[...document.querySelectorAll("#nb-pixels img")].filter(i => i.naturalWidth === 12).length]`))
	if err != nil {
		t.Fatalf("neighbours page: %v", err)
	}
	if len(loaded) != 3 || loaded[0] != 40 || loaded[1] != 10 || loaded[2] != 10 {
		t.Errorf("neighbours page: [test thumbnails, feature neighbours, pixel neighbours] loaded %v, want [40 10 10]", loaded)
	}
}
