package testutil

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Load sends GET requests at a fixed, modest rate, round-robin over
// Targets, and records every one. It retries a request once on the next
// target when the first answer is a connection error or a 502/503/504, as
// a load balancer in front of the targets would; a request counts as
// failed only when that retry fails too (or when Check refuses the
// answer). Records, Failed and Timeline report what happened.
//
// Start it with Run (or Start/Stop); it is safe for concurrent use.
type Load struct {
	// Targets are the URLs tried in turn (one per replica behind the
	// "load balancer").
	Targets []string
	// Client sends the requests (a cookie jar, a dialer).
	Client *http.Client
	// Rate is the number of requests per second (default 20).
	Rate int
	// Timeout bounds one attempt (default 5 s).
	Timeout time.Duration
	// Check, when set, judges a 2xx answer's body (a 200 that is the
	// sign-in page is a lost session): a non-nil error fails the request.
	Check func(status int, body []byte) error

	mu      sync.Mutex
	start   time.Time
	records []LoadRecord
	events  []loadEvent
	cancel  context.CancelFunc
	done    chan struct{}
}

// LoadRecord is one request: its attempts and how it ended.
type LoadRecord struct {
	Seq      int
	Sent     time.Duration // since Start
	Attempts []LoadAttempt
	Err      error // nil: the request succeeded
}

// LoadAttempt is one try of a request on one target.
type LoadAttempt struct {
	Target  int
	Status  int // 0 on a connection error
	Err     string
	Latency time.Duration
}

type loadEvent struct {
	at   time.Duration
	what string
}

// Start begins sending; Stop ends it and waits for requests in flight.
func (l *Load) Start() {
	if l.Rate <= 0 {
		l.Rate = 20
	}
	if l.Timeout <= 0 {
		l.Timeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.mu.Lock()
	l.start, l.cancel, l.done = time.Now(), cancel, make(chan struct{})
	l.mu.Unlock()
	go l.loop(ctx)
}

func (l *Load) loop(ctx context.Context) {
	defer close(l.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(time.Second / time.Duration(l.Rate))
	defer t.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wg.Add(1)
		go func() { defer wg.Done(); l.one(seq) }()
	}
}

func (l *Load) one(seq int) {
	rec := LoadRecord{Seq: seq, Sent: l.since()}
	first := seq % len(l.Targets)
	for try := 0; try < 2; try++ {
		target := (first + try) % len(l.Targets)
		a, body := l.attempt(target)
		rec.Attempts = append(rec.Attempts, a)
		retryable := a.Status == 0 || a.Status == http.StatusBadGateway || a.Status == http.StatusServiceUnavailable || a.Status == http.StatusGatewayTimeout
		if retryable && try == 0 && len(l.Targets) > 1 {
			continue
		}
		switch {
		case a.Status == 0:
			rec.Err = fmt.Errorf("%s", a.Err)
		case a.Status < 200 || a.Status > 299:
			rec.Err = fmt.Errorf("status %d: %.200s", a.Status, body)
		case l.Check != nil:
			rec.Err = l.Check(a.Status, body)
		}
		break
	}
	l.mu.Lock()
	l.records = append(l.records, rec)
	l.mu.Unlock()
}

func (l *Load) attempt(target int) (LoadAttempt, []byte) {
	a := LoadAttempt{Target: target}
	ctx, cancel := context.WithTimeout(context.Background(), l.Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.Targets[target], nil)
	start := time.Now()
	resp, err := l.Client.Do(req)
	if err != nil {
		a.Latency, a.Err = time.Since(start), err.Error()
		return a, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	a.Latency = time.Since(start)
	if err != nil {
		a.Err = err.Error()
		return a, nil
	}
	a.Status = resp.StatusCode
	return a, body
}

func (l *Load) since() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.start)
}

// Stop ends the load and waits for the requests in flight.
func (l *Load) Stop() {
	l.cancel()
	<-l.done
}

// Event adds a line to the timeline (a fault injected, a process back).
func (l *Load) Event(format string, args ...any) {
	at := l.since()
	l.mu.Lock()
	l.events = append(l.events, loadEvent{at, fmt.Sprintf(format, args...)})
	l.mu.Unlock()
}

// Records returns every request recorded so far, in the order sent.
func (l *Load) Records() []LoadRecord {
	l.mu.Lock()
	out := append([]LoadRecord(nil), l.records...)
	l.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// Failed returns the requests that failed (after the load balancer's
// retry).
func (l *Load) Failed() []LoadRecord {
	var out []LoadRecord
	for _, r := range l.Records() {
		if r.Err != nil {
			out = append(out, r)
		}
	}
	return out
}

// Retried returns how many requests needed the retry on another target.
func (l *Load) Retried() int {
	n := 0
	for _, r := range l.Records() {
		if len(r.Attempts) > 1 {
			n++
		}
	}
	return n
}

// Timeline returns the events and every request that failed or was
// retried, in time order, for a test's failure message.
func (l *Load) Timeline() string {
	type line struct {
		at   time.Duration
		text string
	}
	var lines []line
	l.mu.Lock()
	for _, e := range l.events {
		lines = append(lines, line{e.at, "EVENT " + e.what})
	}
	l.mu.Unlock()
	total := 0
	for _, r := range l.Records() {
		total++
		if r.Err == nil && len(r.Attempts) == 1 {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "req %d:", r.Seq)
		for _, a := range r.Attempts {
			if a.Status != 0 {
				fmt.Fprintf(&b, " target %d → %d in %v;", a.Target, a.Status, a.Latency.Round(time.Millisecond))
			} else {
				fmt.Fprintf(&b, " target %d → %s in %v;", a.Target, a.Err, a.Latency.Round(time.Millisecond))
			}
		}
		if r.Err != nil {
			fmt.Fprintf(&b, " FAILED: %v", r.Err)
		} else {
			b.WriteString(" ok after retry")
		}
		lines = append(lines, line{r.Sent, b.String()})
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at < lines[j].at })
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests at %d/s over %d targets; timeline (ms since start):\n", total, l.Rate, len(l.Targets))
	for _, ln := range lines {
		fmt.Fprintf(&b, "%8d  %s\n", ln.at.Milliseconds(), ln.text)
	}
	return b.String()
}
