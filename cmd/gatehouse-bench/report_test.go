package main

import (
	"math"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBuildReport(t *testing.T) {
	bare := &system{Name: sysBare, Procs: []*proc{{Name: "bare-proxy"}, {Name: "upstream"}}}
	gh := &system{Name: sysAllInOne, Procs: []*proc{{Name: "gatehouse"}, {Name: "upstream"}}, Gatehouse: true}
	run := func(sys string, round int, rps float64, p99 time.Duration, reqs int64, cpu map[string]float64, problems ...string) runResult {
		return runResult{System: sys, Connections: 32, Round: round, CPUSeconds: cpu, Problems: problems,
			Wrk: wrkResult{RequestsPerS: rps, Requests: reqs, P50: time.Millisecond, P99: p99}}
	}
	runs := []runResult{
		run(sysBare, 1, 10000, 2*time.Millisecond, 100000, map[string]float64{"bare-proxy": 4, "upstream": 2}),
		run(sysAllInOne, 1, 8000, 3*time.Millisecond, 80000, map[string]float64{"gatehouse": 6, "upstream": 2}),
		run(sysBare, 2, 12000, 4*time.Millisecond, 120000, map[string]float64{"bare-proxy": 5, "upstream": 2}),
		run(sysAllInOne, 2, 9000, 5*time.Millisecond, 90000, map[string]float64{"gatehouse": 7, "upstream": 2}),
		run(sysBare, 3, 11000, 3*time.Millisecond, 110000, map[string]float64{"bare-proxy": 5, "upstream": 3}),
		run(sysAllInOne, 3, 7000, 4*time.Millisecond, 70000, map[string]float64{"gatehouse": 5, "upstream": 1}, "1 non-2xx answers"),
	}
	rep := buildReport(settings{Connections: []int{32}}, runs, []*system{bare, gh}, time.Now())
	if len(rep.Summary) != 2 {
		t.Fatalf("%d summaries, want 2", len(rep.Summary))
	}
	b, g := rep.Summary[0], rep.Summary[1]
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("bare req/s", b.RequestsPerS, 11000)
	near("gatehouse req/s", g.RequestsPerS, 8000)
	near("bare p99", float64(b.P99), float64(3*time.Millisecond))
	near("bare-proxy µs/req", b.CPUPerRequestUS["bare-proxy"], 14e6/330000)
	near("bare total µs/req", b.CPUTotalUS, 21e6/330000)
	near("gatehouse total µs/req", g.CPUTotalUS, 23e6/240000)
	near("ratio req/s", g.Ratio.RequestsPerS, 8000.0/11000)
	near("p99 added", g.Ratio.P99AddedMS, 1)
	near("cpu ratio", g.Ratio.CPUTotal, (23e6/240000)/(21e6/330000))
	if len(rep.Targets) != 2 || rep.Targets[0].Met || !rep.Targets[1].Met {
		t.Errorf("targets %+v, want req/s missed (0.73 < 0.8) and p99 met (+1 ms)", rep.Targets)
	}
	if len(rep.Failures) != 1 {
		t.Errorf("failures %v, want the one problem", rep.Failures)
	}
}
