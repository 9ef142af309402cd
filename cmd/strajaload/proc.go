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
	// pssKB is the proportional set size: shared pages (the libraries of many ffmpeg
	// processes) split between the processes sharing them, so sums are fair.
	pssKB uint64
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
		rss, err := parseKB(status, "VmRSS:")
		if err != nil {
			return u, fmt.Errorf("/proc/%s/status: %w", pid, err)
		}
		smaps, err := os.ReadFile("/proc/" + pid + "/smaps_rollup")
		if err != nil {
			return u, fmt.Errorf("process %s: %w", pid, err)
		}
		pss, err := parseKB(smaps, "Pss:")
		if err != nil {
			return u, fmt.Errorf("/proc/%s/smaps_rollup: %w", pid, err)
		}
		u.ticks += t
		u.rssKB += rss
		u.pssKB += pss
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

// parseKB returns the "key: N kB" line of /proc/PID/status or smaps_rollup, in kB.
func parseKB(b []byte, key string) (uint64, error) {
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, key)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s %q: want \"N kB\"", key, strings.TrimSpace(rest))
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	// Zombies and kernel threads have no memory lines.
	return 0, fmt.Errorf("no %s line (process exited?)", key)
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

// udpStats are the kernel's UDP counters (all processes).
type udpStats struct {
	rcvbufErrors uint64 // datagrams dropped because a socket's receive buffer was full
}

func readUDPStats() (udpStats, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return udpStats{}, fmt.Errorf("udp counters: %w", err)
	}
	return parseUDPStats(b)
}

// parseUDPStats reads /proc/net/snmp, where a "Udp:" line of names is followed by a
// "Udp:" line of values.
func parseUDPStats(b []byte) (udpStats, error) {
	var names []string
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "Udp:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if names == nil {
			names = f
			continue
		}
		if len(f) != len(names) {
			return udpStats{}, fmt.Errorf("udp counters: %d names, %d values", len(names), len(f))
		}
		for i, n := range names {
			if n == "RcvbufErrors" {
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					return udpStats{}, fmt.Errorf("udp RcvbufErrors: %w", err)
				}
				return udpStats{rcvbufErrors: v}, nil
			}
		}
		return udpStats{}, errors.New("udp counters: no RcvbufErrors")
	}
	return udpStats{}, errors.New("udp counters: no Udp lines")
}
