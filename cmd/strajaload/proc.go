package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// procUsage is what /proc says of a set of processes at one moment.
type procUsage struct {
	ticks uint64 // user + system CPU time, in clock ticks
	rssKB uint64 // resident set size
}

// readUsage sums CPU time and RSS over pids ("self" is allowed).
func readUsage(pids []string) (procUsage, error) {
	var u procUsage
	for _, pid := range pids {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return u, fmt.Errorf("process %s: %w", pid, err)
		}
		t, err := parseStatTicks(stat)
		if err != nil {
			return u, fmt.Errorf("/proc/%s/stat: %w", pid, err)
		}
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			return u, fmt.Errorf("process %s: %w", pid, err)
		}
		rss, err := parseVmRSS(status)
		if err != nil {
			return u, fmt.Errorf("/proc/%s/status: %w", pid, err)
		}
		u.ticks += t
		u.rssKB += rss
	}
	return u, nil
}

// parseStatTicks returns utime + stime from the contents of /proc/PID/stat. The command
// name (field 2) is in parentheses and may hold spaces and ')', so fields are counted
// from the last ')'.
func parseStatTicks(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	// After ")": state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return utime + stime, nil
}

// parseVmRSS returns VmRSS in kB from the contents of /proc/PID/status.
func parseVmRSS(b []byte) (uint64, error) {
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS %q: want \"N kB\"", strings.TrimSpace(rest))
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	// Zombies and kernel threads have no VmRSS line.
	return 0, errors.New("no VmRSS (process exited?)")
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (almost always 100).
func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return float64(n)
		}
	}
	return 100
}

// loadAverage returns the 1-minute load average, or "?" when /proc/loadavg is unreadable.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
