package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	Requests     int64         `json:"requests"`
	Duration     time.Duration `json:"duration_ns"`
	RequestsPerS float64       `json:"requests_per_s"`
	LatencyAvg   time.Duration `json:"latency_avg_ns"`
	LatencyMax   time.Duration `json:"latency_max_ns"`
	P50          time.Duration `json:"p50_ns"`
	P75          time.Duration `json:"p75_ns"`
	P90          time.Duration `json:"p90_ns"`
	P99          time.Duration `json:"p99_ns"`
	Non2xx       int64         `json:"non_2xx_3xx"` // wrk's own count: status ≥ 400 only
	// NotOK counts every answer outside 200–299, 3xx included, from
	// statusScript; -1 when the run had no script.
	NotOK         int64        `json:"status_not_2xx"`
	SocketErrors  socketErrors `json:"socket_errors"`
	BytesReadText string       `json:"bytes_read"`
}

// socketErrors is wrk's "Socket errors:" line.
type socketErrors struct {
	Connect int64 `json:"connect"`
	Read    int64 `json:"read"`
	Write   int64 `json:"write"`
	Timeout int64 `json:"timeout"`
}

// Total is the number of socket errors of every kind.
func (s socketErrors) Total() int64 { return s.Connect + s.Read + s.Write + s.Timeout }

// statusScript is a wrk Lua script that counts every answer whose status
// is not 2xx (wrk's own "Non-2xx or 3xx responses" counts only status ≥ 400)
// and prints the total after the run. Its response callback costs wrk about
// a microsecond per request (wrk's CPU is reported apart).
const statusScript = `local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("bad") end
  io.write(string.format("` + statusLinePrefix + ` %d\n", n))
end
`

// statusLinePrefix starts the line statusScript prints.
const statusLinePrefix = "Status not 2xx:"

// parseWrkOutput parses the text wrk prints with --latency.
func parseWrkOutput(out string) (wrkResult, error) {
	r := wrkResult{NotOK: -1}
	var haveReqs, haveRPS, haveP50, haveP99 bool
	sc := bufio.NewScanner(strings.NewReader(out))
	inDist := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "Latency Distribution"):
			inDist = true
			continue
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("wrk: latency percentile %q: %w", line, err)
			}
			switch f[0] {
			case "50%", "50.000%":
				r.P50, haveP50 = d, true
			case "75%", "75.000%":
				r.P75 = d
			case "90%", "90.000%":
				r.P90 = d
			case "99%", "99.000%":
				r.P99, haveP99 = d, true
			}
			continue
		}
		inDist = false
		switch {
		case len(f) >= 4 && f[0] == "Latency":
			// "Latency   1.23ms  456.00us  12.34ms   78.90%"
			avg, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("wrk: latency %q: %w", line, err)
			}
			max, err := parseWrkDuration(f[3])
			if err != nil {
				return r, fmt.Errorf("wrk: latency %q: %w", line, err)
			}
			r.LatencyAvg, r.LatencyMax = avg, max
		case len(f) >= 5 && f[1] == "requests" && f[2] == "in":
			// "157890 requests in 10.00s, 30.12MB read"
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: requests %q: %w", line, err)
			}
			d, err := parseWrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return r, fmt.Errorf("wrk: duration %q: %w", line, err)
			}
			r.Requests, r.Duration, haveReqs = n, d, true
			r.BytesReadText = f[4]
		case strings.HasPrefix(line, "Socket errors:"):
			// "Socket errors: connect 0, read 0, write 0, timeout 0"
			rest := strings.Fields(strings.ReplaceAll(strings.TrimPrefix(line, "Socket errors:"), ",", " "))
			if len(rest)%2 != 0 {
				return r, fmt.Errorf("wrk: socket errors %q", line)
			}
			for i := 0; i < len(rest); i += 2 {
				n, err := strconv.ParseInt(rest[i+1], 10, 64)
				if err != nil {
					return r, fmt.Errorf("wrk: socket errors %q: %w", line, err)
				}
				switch rest[i] {
				case "connect":
					r.SocketErrors.Connect = n
				case "read":
					r.SocketErrors.Read = n
				case "write":
					r.SocketErrors.Write = n
				case "timeout":
					r.SocketErrors.Timeout = n
				default:
					return r, fmt.Errorf("wrk: socket errors: unknown kind %q", rest[i])
				}
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: non-2xx %q: %w", line, err)
			}
			r.Non2xx = n
		case strings.HasPrefix(line, statusLinePrefix):
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, statusLinePrefix)), 10, 64)
			if err != nil || n < 0 {
				return r, fmt.Errorf("wrk: status count %q", line)
			}
			r.NotOK = n
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")), 64)
			if err != nil {
				return r, fmt.Errorf("wrk: requests/sec %q: %w", line, err)
			}
			r.RequestsPerS, haveRPS = v, true
		}
	}
	if err := sc.Err(); err != nil {
		return r, err
	}
	var missing []string
	if !haveReqs {
		missing = append(missing, "request count")
	}
	if !haveRPS {
		missing = append(missing, "Requests/sec")
	}
	if !haveP50 || !haveP99 {
		missing = append(missing, "latency distribution (--latency)")
	}
	if len(missing) > 0 {
		return r, fmt.Errorf("wrk: output lacks %s", strings.Join(missing, ", "))
	}
	return r, nil
}

// parseWrkDuration parses wrk's durations: "812.00us", "1.23ms", "10.00s",
// "1.00m", "2.00h".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{
		{"us", time.Microsecond},
		{"ms", time.Millisecond},
		{"s", time.Second},
		{"m", time.Minute},
		{"h", time.Hour},
	}
	for _, u := range units {
		if !strings.HasSuffix(s, u.suffix) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, u.suffix), 64)
		if err != nil {
			return 0, err
		}
		if v < 0 {
			return 0, fmt.Errorf("negative duration %q", s)
		}
		return time.Duration(v * float64(u.unit)), nil
	}
	return 0, fmt.Errorf("unknown duration %q", s)
}

// wrkRun describes one wrk invocation.
type wrkRun struct {
	URL         string
	Host        string // Host header; empty: from URL
	Headers     []string
	Script      string // path of a Lua script (statusScript); empty: none
	Threads     int
	Connections int
	Duration    time.Duration
}

// args returns wrk's command-line arguments.
func (w wrkRun) args() []string {
	threads := w.Threads
	if threads > w.Connections {
		threads = w.Connections
	}
	a := []string{
		"-t", strconv.Itoa(threads),
		"-c", strconv.Itoa(w.Connections),
		"-d", fmt.Sprintf("%ds", int((w.Duration+time.Second-1)/time.Second)),
		"--timeout", "5s",
		"--latency",
	}
	if w.Host != "" {
		a = append(a, "-H", "Host: "+w.Host)
	}
	for _, h := range w.Headers {
		a = append(a, "-H", h)
	}
	if w.Script != "" {
		a = append(a, "-s", w.Script)
	}
	return append(a, w.URL)
}

// wrkOutcome is a wrk run's parsed result plus wrk's own CPU time.
type wrkOutcome struct {
	wrkResult
	Raw string
	CPU time.Duration
}

// run runs wrk to completion (bounded by the run's duration plus a margin)
// and parses its output.
func (w wrkRun) run(ctx context.Context) (wrkOutcome, error) {
	ctx, cancel := context.WithTimeout(ctx, w.Duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", w.args()...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	o := wrkOutcome{Raw: out.String()}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			o.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	if err != nil {
		return o, fmt.Errorf("wrk %s: %w\n%s", strings.Join(w.args(), " "), err, out.String())
	}
	r, err := parseWrkOutput(out.String())
	if err == nil && w.Script != "" && r.NotOK < 0 {
		err = fmt.Errorf("wrk: output lacks the script's %q line", statusLinePrefix)
	}
	if err != nil {
		return o, fmt.Errorf("%w\n%s", err, out.String())
	}
	o.wrkResult = r
	return o, nil
}
