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
