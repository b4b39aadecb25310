package main

import (
	"strings"
	"testing"
	"time"
)

const wrkFull = `Running 10s test @ http://127.0.0.1:40123/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.31ms    3.84ms  48.12ms   93.10%
    Req/Sec     8.12k     1.02k   10.40k    71.50%
  Latency Distribution
     50%    1.60ms
     75%    2.10ms
     90%    3.90ms
     99%   19.85ms
  161523 requests in 10.00s, 31.42MB read
Requests/sec:  16146.93
Transfer/sec:      3.14MB
`

const wrkErrors = `Running 3s test @ http://127.0.0.1:40123/
  2 threads and 256 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us  456.00us   1.02s    78.90%
    Req/Sec     7.89k   123.45     8.90k    67.89%
  Latency Distribution
     50%  750.00us
     75%    1.50ms
     90%    2.00ms
     99%    1.20s
  47890 requests in 3.01s, 9.12MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 12
Requests/sec:  15910.30
Transfer/sec:      3.03MB
`

func TestParseWrkOutput(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    wrkResult
		wantErr string
	}{
		{
			name: "clean run",
			in:   wrkFull,
			want: wrkResult{
				Requests: 161523, Duration: 10 * time.Second, RequestsPerS: 16146.93,
				LatencyAvg: 2310 * time.Microsecond, LatencyMax: 48120 * time.Microsecond,
				P50: 1600 * time.Microsecond, P75: 2100 * time.Microsecond, P90: 3900 * time.Microsecond, P99: 19850 * time.Microsecond,
				BytesReadText: "31.42MB", NotOK: -1,
			},
		},
		{
			name: "errors, microseconds and seconds",
			in:   wrkErrors,
			want: wrkResult{
				Requests: 47890, Duration: 3010 * time.Millisecond, RequestsPerS: 15910.30,
				LatencyAvg: 812 * time.Microsecond, LatencyMax: 1020 * time.Millisecond,
				P50: 750 * time.Microsecond, P75: 1500 * time.Microsecond, P90: 2 * time.Millisecond, P99: 1200 * time.Millisecond,
				Non2xx:        12,
				SocketErrors:  socketErrors{Connect: 1, Read: 2, Write: 3, Timeout: 4},
				BytesReadText: "9.12MB", NotOK: -1,
			},
		},
		{
			name: "status script",
			in:   strings.Replace(wrkFull, "Requests/sec", "Status not 2xx: 7\nRequests/sec", 1),
			want: wrkResult{
				Requests: 161523, Duration: 10 * time.Second, RequestsPerS: 16146.93,
				LatencyAvg: 2310 * time.Microsecond, LatencyMax: 48120 * time.Microsecond,
				P50: 1600 * time.Microsecond, P75: 2100 * time.Microsecond, P90: 3900 * time.Microsecond, P99: 19850 * time.Microsecond,
				BytesReadText: "31.42MB", NotOK: 7,
			},
		},
		{
			name:    "bad status count",
			in:      strings.Replace(wrkFull, "Requests/sec", "Status not 2xx: many\nRequests/sec", 1),
			wantErr: "status count",
		},
		{
			name:    "no latency distribution",
			in:      strings.Replace(wrkFull, "  Latency Distribution\n     50%    1.60ms\n     75%    2.10ms\n     90%    3.90ms\n     99%   19.85ms\n", "", 1),
			wantErr: "latency distribution",
		},
		{
			name:    "connection refused",
			in:      "unable to connect to 127.0.0.1:1 Connection refused\n",
			wantErr: "request count",
		},
		{
			name:    "empty",
			in:      "",
			wantErr: "Requests/sec",
		},
		{
			name:    "bad socket errors",
			in:      strings.Replace(wrkFull, "Requests/sec", "  Socket errors: connect x, read 0, write 0, timeout 0\nRequests/sec", 1),
			wantErr: "socket errors",
		},
		{
			name:    "bad percentile",
			in:      strings.Replace(wrkFull, "19.85ms", "19.85parsecs", 1),
			wantErr: "percentile",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrkOutput(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseWrkDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"812.00us", 812 * time.Microsecond, false},
		{"1.23ms", 1230 * time.Microsecond, false},
		{"10.00s", 10 * time.Second, false},
		{"1.50m", 90 * time.Second, false},
		{"2.00h", 2 * time.Hour, false},
		{"0.00us", 0, false},
		{"12", 0, true},
		{"ms", 0, true},
		{"-1.00ms", 0, true},
		{"1.0xs", 0, true},
	}
	for _, tt := range tests {
		got, err := parseWrkDuration(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseWrkDuration(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		// Float parsing may be off by a nanosecond.
		if d := got - tt.want; d < -time.Nanosecond || d > time.Nanosecond {
			t.Errorf("parseWrkDuration(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestWrkRunArgs(t *testing.T) {
	w := wrkRun{URL: "http://127.0.0.1:1/", Host: "bench.localhost:1", Headers: []string{"Authorization: Bearer Pomerium-x"},
		Script: "s.lua", Threads: 2, Connections: 1, Duration: 2500 * time.Millisecond}
	got := strings.Join(w.args(), " ")
	want := "-t 1 -c 1 -d 3s --timeout 5s --latency -H Host: bench.localhost:1 -H Authorization: Bearer Pomerium-x -s s.lua http://127.0.0.1:1/"
	if got != want {
		t.Errorf("args\n got %s\nwant %s", got, want)
	}
}
