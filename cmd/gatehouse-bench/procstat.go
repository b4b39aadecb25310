package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ: the unit of utime and stime in
// /proc/PID/stat. It is 100 on every Linux we run on; clkTck asks getconf
// and falls back to it.
const clockTicks = 100

// clkTck returns USER_HZ (getconf CLK_TCK), or clockTicks when getconf is
// missing.
func clkTck() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return clockTicks
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return clockTicks
	}
	return n
}

// procTimes are the CPU times of one process, in clock ticks.
type procTimes struct {
	UTime, STime int64
}

// Total is user plus system time, in clock ticks.
func (t procTimes) Total() int64 { return t.UTime + t.STime }

// parseProcStat reads utime and stime (fields 14 and 15) from the contents
// of /proc/PID/stat. The second field, comm, is in parentheses and may
// itself hold spaces and parentheses, so the fields are counted from the
// last ')'.
func parseProcStat(data []byte) (procTimes, error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return procTimes{}, fmt.Errorf("proc stat: no ')' after comm")
	}
	// After ")": field 3 (state) onwards; utime is field 14, i.e. the
	// 12th field after comm, stime the 13th.
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 13 {
		return procTimes{}, fmt.Errorf("proc stat: %d fields after comm, want at least 13", len(fields))
	}
	u, err := strconv.ParseInt(fields[11], 10, 64)
	if err != nil {
		return procTimes{}, fmt.Errorf("proc stat: utime %q: %w", fields[11], err)
	}
	s, err := strconv.ParseInt(fields[12], 10, 64)
	if err != nil {
		return procTimes{}, fmt.Errorf("proc stat: stime %q: %w", fields[12], err)
	}
	if u < 0 || s < 0 {
		return procTimes{}, fmt.Errorf("proc stat: negative times %d %d", u, s)
	}
	return procTimes{UTime: u, STime: s}, nil
}

// readProcTimes returns the CPU times of process pid (all its threads).
func readProcTimes(pid int) (procTimes, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procTimes{}, err
	}
	return parseProcStat(data)
}

// ticksToDuration converts clock ticks to a duration at hz ticks a second.
func ticksToDuration(ticks, hz int64) time.Duration {
	return time.Duration(ticks) * time.Second / time.Duration(hz)
}

// hostTimes are the machine's CPU times from the "cpu" line of /proc/stat,
// in clock ticks.
type hostTimes struct {
	Busy, Idle, Steal int64
}

// parseHostStat reads the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal [guest guest_nice]. Guest time is
// already inside user, so it is not added again.
func parseHostStat(data []byte) (hostTimes, error) {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return hostTimes{}, fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 9", len(f))
		}
		var v [8]int64
		for i := range v {
			n, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil || n < 0 {
				return hostTimes{}, fmt.Errorf("/proc/stat: cpu field %d %q", i+1, f[i+1])
			}
			v[i] = n
		}
		return hostTimes{Busy: v[0] + v[1] + v[2] + v[5] + v[6], Idle: v[3] + v[4], Steal: v[7]}, nil
	}
	return hostTimes{}, fmt.Errorf("/proc/stat: no cpu line")
}

// readHostTimes reads /proc/stat.
func readHostTimes() (hostTimes, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostTimes{}, err
	}
	return parseHostStat(data)
}

// hostUsage is how the machine's CPU time went during a run, as fractions.
type hostUsage struct {
	Busy  float64 `json:"busy"`
	Idle  float64 `json:"idle"`
	Steal float64 `json:"steal"` // taken by the hypervisor: numbers are noisy when high
	// BusyTicks is the machine's busy time in clock ticks, all CPUs.
	BusyTicks int64 `json:"busy_ticks"`
	// TotalTicks is busy + idle + steal in clock ticks, all CPUs.
	TotalTicks int64 `json:"total_ticks"`
}

func usageBetween(a, b hostTimes) hostUsage {
	busy, idle, steal := float64(b.Busy-a.Busy), float64(b.Idle-a.Idle), float64(b.Steal-a.Steal)
	total := busy + idle + steal
	if total <= 0 {
		return hostUsage{}
	}
	return hostUsage{Busy: busy / total, Idle: idle / total, Steal: steal / total,
		BusyTicks: b.Busy - a.Busy, TotalTicks: int64(total)}
}

// parseVmRSS returns the resident set size in bytes from the contents of
// /proc/PID/status ("VmRSS:   12345 kB").
func parseVmRSS(data []byte) (int64, error) {
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("proc status: VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("proc status: VmRSS line %q", line)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("proc status: no VmRSS line")
}

// readRSS returns the resident set size of process pid, in bytes.
func readRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(data)
}

// readAllProcTimes reads the CPU times of every process, failing when one
// has exited (a run whose process died measures nothing).
func readAllProcTimes(procs []*proc) ([]procTimes, error) {
	out := make([]procTimes, len(procs))
	for i, p := range procs {
		if err := p.exited(); err != nil {
			return nil, err
		}
		t, err := readProcTimes(p.PID())
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}
