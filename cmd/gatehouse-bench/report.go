package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the bench's JSON output.
type report struct {
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished"`
	Machine  machine     `json:"machine"`
	Settings settings    `json:"settings"`
	Summary  []summary   `json:"summary"`
	Runs     []runResult `json:"runs"`
	Failures []string    `json:"failures"`
	Targets  []target    `json:"targets"`
}

// target is one of issue 21's goals, checked against this run. Missing a
// target is reported, not a failure of the bench.
type target struct {
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Met   bool    `json:"met"`
}

// checkTargets compares the summary with issue 21's ratio targets: at 32
// and 256 connections all-in-one ≥ 0.9 × the bare proxy's requests/s and
// the split systems ≥ 0.7 ×; at 32 connections p99 added ≤ 1 ms
// (all-in-one) and ≤ 2 ms (split).
func checkTargets(sums []summary) []target {
	var out []target
	for _, s := range sums {
		if s.Ratio == nil {
			continue
		}
		if s.Connections != 32 && s.Connections != 256 {
			continue // the issue sets targets at 32 and 256 connections only
		}
		var wantRPS, wantP99 float64
		switch s.System {
		case sysAllInOne:
			wantRPS, wantP99 = 0.9, 1
		case sysSplit, sysSplitRd:
			wantRPS, wantP99 = 0.7, 2
		default:
			continue
		}
		short := strings.TrimPrefix(s.System, "gatehouse-")
		out = append(out, target{Goal: fmt.Sprintf("%s req/s ≥ %.1f × bare at %d connections", short, wantRPS, s.Connections),
			Value: s.Ratio.RequestsPerS, Met: s.Ratio.RequestsPerS >= wantRPS})
		if s.Connections == 32 {
			out = append(out, target{Goal: fmt.Sprintf("%s p99 added ≤ %.0f ms at 32 connections", short, wantP99),
				Value: s.Ratio.P99AddedMS, Met: s.Ratio.P99AddedMS <= wantP99})
		}
	}
	return out
}

// summary is one system at one connection count, over every round.
type summary struct {
	System      string `json:"system"`
	Connections int    `json:"connections"`
	Rounds      int    `json:"rounds"`
	// RequestsPerS, P50 and P99 are medians over the rounds.
	RequestsPerS    float64       `json:"requests_per_s"`
	RequestsPerSAll []float64     `json:"requests_per_s_rounds"`
	P50             time.Duration `json:"p50_ns"`
	P99             time.Duration `json:"p99_ns"`
	P50MS           float64       `json:"p50_ms"`
	P99MS           float64       `json:"p99_ms"`
	Requests        int64         `json:"requests"`
	// CPUPerRequestUS is each process's CPU time (user+system) over every
	// round divided by the requests wrk completed, in microseconds;
	// Processes gives their order. The total leaves out wrk.
	Processes       []string           `json:"processes"`
	CPUPerRequestUS map[string]float64 `json:"cpu_us_per_request"`
	CPUTotalUS      float64            `json:"cpu_us_per_request_total"`
	// RSSMaxBytes is each process's largest resident set size at the end
	// of a round, under this load.
	RSSMaxBytes        map[string]int64 `json:"rss_max_bytes"`
	WrkCPUPerRequestUS float64          `json:"wrk_cpu_us_per_request"`
	Non2xx             int64            `json:"non_2xx_3xx"`    // wrk's count (≥ 400)
	NotOK              int64            `json:"status_not_2xx"` // every answer outside 2xx
	SocketErrors       socketErrors     `json:"socket_errors"`
	Upstream           upstreamStats    `json:"upstream"`
	// HostSteal is the largest share of the machine's CPU the hypervisor
	// took during a round; above a few percent the numbers are noisy.
	HostSteal float64 `json:"host_cpu_steal_max"`
	// Unattributed is the largest share of the machine's CPU during a
	// round that was not the system's processes or wrk.
	Unattributed float64 `json:"unattributed_cpu_share_max"`
	// Versus the baseline (bare-proxy) at the same connection count;
	// absent when the baseline did not run.
	Ratio *ratio `json:"vs_bare_proxy,omitempty"`
	// VsOAuth2Proxy compares with oauth2-proxy (cookie store) at the same
	// connection count; absent when it did not run.
	VsOAuth2Proxy *peerRatio `json:"vs_oauth2_proxy,omitempty"`
}

// peerRatio compares a system with a peer: > 1 means more requests/s, or
// more CPU per request.
type peerRatio struct {
	RequestsPerS float64 `json:"requests_per_s_ratio"`
	CPUTotal     float64 `json:"cpu_per_request_ratio"`
}

// ratio compares a system with the bare proxy.
type ratio struct {
	RequestsPerS float64 `json:"requests_per_s_ratio"`
	P50AddedMS   float64 `json:"p50_added_ms"`
	P99AddedMS   float64 `json:"p99_added_ms"`
	CPUTotal     float64 `json:"cpu_per_request_ratio"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDur(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	return time.Duration(median(f))
}

// summarize folds the runs of one system at one connection count.
func summarize(sys *system, conns int, runs []runResult) summary {
	s := summary{System: sys.Name, Connections: conns, CPUPerRequestUS: map[string]float64{}, RSSMaxBytes: map[string]int64{}}
	for _, p := range sys.Procs {
		s.Processes = append(s.Processes, p.Name)
	}
	var p50, p99 []time.Duration
	cpu := map[string]float64{}
	var wrkCPU float64
	for _, r := range runs {
		if r.System != sys.Name || r.Connections != conns {
			continue
		}
		s.Rounds++
		s.RequestsPerSAll = append(s.RequestsPerSAll, r.Wrk.RequestsPerS)
		p50 = append(p50, r.Wrk.P50)
		p99 = append(p99, r.Wrk.P99)
		s.Requests += r.Wrk.Requests
		s.Non2xx += r.Wrk.Non2xx
		s.NotOK += max(r.Wrk.NotOK, 0)
		s.SocketErrors.Connect += r.Wrk.SocketErrors.Connect
		s.SocketErrors.Read += r.Wrk.SocketErrors.Read
		s.SocketErrors.Write += r.Wrk.SocketErrors.Write
		s.SocketErrors.Timeout += r.Wrk.SocketErrors.Timeout
		s.Upstream.Requests += r.Upstream.Requests
		s.Upstream.JWTValid += r.Upstream.JWTValid
		s.Upstream.JWTInvalid += r.Upstream.JWTInvalid
		s.Upstream.JWTMissing += r.Upstream.JWTMissing
		s.Upstream.SignatureChecks += r.Upstream.SignatureChecks
		s.Upstream.EmailValid += r.Upstream.EmailValid
		s.Upstream.EmailInvalid += r.Upstream.EmailInvalid
		for name, sec := range r.CPUSeconds {
			cpu[name] += sec
		}
		wrkCPU += r.WrkCPU
		for name, b := range r.RSSBytes {
			s.RSSMaxBytes[name] = max(s.RSSMaxBytes[name], b)
		}
		s.HostSteal = max(s.HostSteal, r.Host.Steal)
		s.Unattributed = max(s.Unattributed, r.Unattributed)
	}
	s.RequestsPerS = median(s.RequestsPerSAll)
	s.P50, s.P99 = medianDur(p50), medianDur(p99)
	s.P50MS, s.P99MS = float64(s.P50)/float64(time.Millisecond), float64(s.P99)/float64(time.Millisecond)
	if s.Requests > 0 {
		n := float64(s.Requests)
		for name, sec := range cpu {
			us := sec * 1e6 / n
			s.CPUPerRequestUS[name] = us
			s.CPUTotalUS += us
		}
		s.WrkCPUPerRequestUS = wrkCPU * 1e6 / n
	}
	return s
}

// buildReport summarizes every system at every connection count, adds the
// ratios to the bare proxy and lists every failed check.
func buildReport(set settings, runs []runResult, order []*system, started time.Time) report {
	rep := report{Started: started, Finished: time.Now(), Machine: describeMachine(), Settings: set, Runs: runs, Failures: []string{}}
	for _, c := range set.Connections {
		var base, peer *summary
		for _, sys := range order {
			s := summarize(sys, c, runs)
			switch sys.Name {
			case sysBare:
				b := s
				base = &b
			case sysO2P:
				p := s
				peer = &p
			}
			rep.Summary = append(rep.Summary, s)
		}
		if peer != nil && peer.RequestsPerS > 0 && peer.CPUTotalUS > 0 {
			for i := range rep.Summary {
				if s := &rep.Summary[i]; s.Connections == c {
					s.VsOAuth2Proxy = &peerRatio{RequestsPerS: s.RequestsPerS / peer.RequestsPerS, CPUTotal: s.CPUTotalUS / peer.CPUTotalUS}
				}
			}
		}
		if base == nil || base.RequestsPerS == 0 {
			continue
		}
		for i := range rep.Summary {
			s := &rep.Summary[i]
			if s.Connections != c {
				continue
			}
			s.Ratio = &ratio{
				RequestsPerS: s.RequestsPerS / base.RequestsPerS,
				P50AddedMS:   float64(s.P50-base.P50) / float64(time.Millisecond),
				P99AddedMS:   float64(s.P99-base.P99) / float64(time.Millisecond),
			}
			if base.CPUTotalUS > 0 {
				s.Ratio.CPUTotal = s.CPUTotalUS / base.CPUTotalUS
			}
		}
	}
	rep.Targets = checkTargets(rep.Summary)
	for _, r := range runs {
		for _, p := range r.Problems {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s, %d connections, round %d: %s", r.System, r.Connections, r.Round, p))
		}
	}
	return rep
}

// printTable writes the summary as an aligned table.
func printTable(w io.Writer, rep report) error {
	fmt.Fprintf(w, "\ngatehouse bench: %d round(s) of %s per system and connection count; %d CPUs (%s), wrk -t%d\n\n",
		rep.Settings.Rounds, rep.Settings.Duration, rep.Machine.CPUs, rep.Machine.CPUModel, rep.Settings.Threads)
	width := len("system")
	for _, s := range rep.Summary {
		width = max(width, len(s.System))
	}
	left := func(s string) string { return s + strings.Repeat(" ", width-len(s)) } // left-aligned in a right-aligned table
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tconns\treq/s\tp50\tp99\tCPU µs/req\t× bare req/s\t+p50 ms\t+p99 ms\t× bare CPU\t× oauth2-proxy req/s\t× oauth2-proxy CPU\t\n", left("system"))
	for _, s := range rep.Summary {
		rr, p50, p99, cpu, orr, ocpu := "-", "-", "-", "-", "-", "-"
		if s.Ratio != nil {
			rr = fmt.Sprintf("%.2f", s.Ratio.RequestsPerS)
			p50 = fmt.Sprintf("%+.2f", s.Ratio.P50AddedMS)
			p99 = fmt.Sprintf("%+.2f", s.Ratio.P99AddedMS)
			cpu = fmt.Sprintf("%.2f", s.Ratio.CPUTotal)
		}
		if s.VsOAuth2Proxy != nil {
			orr = fmt.Sprintf("%.2f", s.VsOAuth2Proxy.RequestsPerS)
			ocpu = fmt.Sprintf("%.2f", s.VsOAuth2Proxy.CPUTotal)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			left(s.System), s.Connections, s.RequestsPerS, fmtDur(s.P50), fmtDur(s.P99), s.CPUTotalUS, rr, p50, p99, cpu, orr, ocpu)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nCPU µs per request per process (user+system from /proc/PID/stat; wrk apart, not in the total), (RSS under load):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range rep.Summary {
		var parts []string
		for _, name := range s.Processes {
			parts = append(parts, fmt.Sprintf("%s %.1f (%.0f MB)", name, s.CPUPerRequestUS[name], float64(s.RSSMaxBytes[name])/(1<<20)))
		}
		fmt.Fprintf(tw, "  %s\tc=%d\t%s\t(wrk %.1f)\n", s.System, s.Connections, strings.Join(parts, ", "), s.WrkCPUPerRequestUS)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\nissue 21 targets (reported, not enforced):")
		for _, t := range rep.Targets {
			mark := "MISSED"
			if t.Met {
				mark = "met"
			}
			fmt.Fprintf(w, "  %-6s %-52s %.2f\n", mark, t.Goal, t.Value)
		}
	}
	var steal, other float64
	for _, s := range rep.Summary {
		steal = max(steal, s.HostSteal)
		other = max(other, s.Unattributed)
	}
	if other > 0.10 {
		fmt.Fprintf(w, "\nwarning: up to %.0f%% of the CPU during a run went to other programs or interrupts; expect noisy numbers\n", other*100)
	}
	if steal > 0.05 {
		fmt.Fprintf(w, "\nwarning: the hypervisor took up to %.0f%% of the CPU during a run; expect noisy numbers\n", steal*100)
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintln(w, "\nFAILED checks:")
		for _, f := range rep.Failures {
			fmt.Fprintln(w, "  "+f)
		}
	} else {
		fmt.Fprintln(w, "\nchecks: every answer 2xx from the upstream; every gatehouse request carried a valid identity JWT, every oauth2-proxy request the signed-in user's X-Forwarded-Email")
	}
	return nil
}

// fmtDur prints a latency with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
}
