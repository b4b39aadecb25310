package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// Field 14 utime, 15 stime (1-based), counted after the comm field.
	tail := " S 1 1234 1234 0 -1 4194560 5000 0 0 0 %s %s 0 0 20 0 8 0 123456 1234567 890 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
	line := func(comm, u, s string) string {
		return "4242 (" + comm + ")" + strings.Replace(strings.Replace(tail, "%s", u, 1), "%s", s, 1)
	}
	tests := []struct {
		name    string
		in      string
		want    procTimes
		wantErr bool
	}{
		{"plain", line("gatehouse", "1500", "250"), procTimes{1500, 250}, false},
		{"comm with spaces", line("my proc", "7", "3"), procTimes{7, 3}, false},
		{"comm with parentheses", line("a) (b", "10", "20"), procTimes{10, 20}, false},
		{"zero", line("x", "0", "0"), procTimes{0, 0}, false},
		{"no comm", "4242 gatehouse S 1 2 3", procTimes{}, true},
		{"truncated", "4242 (gatehouse) S 1 1234 1234 0 -1 4194560 5000 0 0 0 15", procTimes{}, true},
		{"not a number", line("x", "abc", "1"), procTimes{}, true},
		{"negative", line("x", "-5", "1"), procTimes{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadProcTimesSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := readProcTimes(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestTicksToDuration(t *testing.T) {
	tests := []struct {
		ticks, hz int64
		want      time.Duration
	}{
		{100, 100, time.Second},
		{1, 100, 10 * time.Millisecond},
		{250, 1000, 250 * time.Millisecond},
		{0, 100, 0},
	}
	for _, tt := range tests {
		if got := ticksToDuration(tt.ticks, tt.hz); got != tt.want {
			t.Errorf("ticksToDuration(%d, %d) = %v, want %v", tt.ticks, tt.hz, got, tt.want)
		}
	}
}

func TestParseHostStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    hostTimes
		wantErr bool
	}{
		{"full", "cpu  251156 260 54728 64073 723 0 6067 151 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n", hostTimes{Busy: 251156 + 260 + 54728 + 6067, Idle: 64073 + 723, Steal: 151}, false},
		{"old kernel, no guest", "cpu 10 0 5 100 0 0 0 2\n", hostTimes{Busy: 15, Idle: 100, Steal: 2}, false},
		{"short", "cpu 10 0 5 100\n", hostTimes{}, true},
		{"no cpu line", "intr 1\nctxt 2\n", hostTimes{}, true},
		{"garbage", "cpu a b c d e f g h\n", hostTimes{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHostStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUsageBetween(t *testing.T) {
	u := usageBetween(hostTimes{Busy: 100, Idle: 100, Steal: 0}, hostTimes{Busy: 280, Idle: 110, Steal: 10})
	if u.Busy != 0.9 || u.Idle != 0.05 || u.Steal != 0.05 || u.BusyTicks != 180 || u.TotalTicks != 200 {
		t.Errorf("got %+v", u)
	}
	if (usageBetween(hostTimes{}, hostTimes{}) != hostUsage{}) {
		t.Error("no time passed: want zero usage")
	}
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"typical", "Name:\tgatehouse\nVmPeak:\t  900000 kB\nVmRSS:\t   45312 kB\nRssAnon:\t   30000 kB\n", 45312 * 1024, false},
		{"zero", "VmRSS:\t0 kB\n", 0, false},
		{"kernel thread", "Name:\tkthreadd\nState:\tS\n", 0, true},
		{"bad unit", "VmRSS:\t45312 MB\n", 0, true},
		{"bad number", "VmRSS:\tlots kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}
