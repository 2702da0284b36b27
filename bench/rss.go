package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// peakRSSMiB returns the peak resident set size (VmHWM) of process pid in
// MiB, or 0 when it cannot be read (pid 0, another machine, not Linux).
func peakRSSMiB(pid int) float64 {
	return procStatusMiB(pid, "VmHWM:")
}

// rssMiB returns the current resident set size (VmRSS) of process pid in
// MiB, or 0 when it cannot be read.
func rssMiB(pid int) float64 {
	return procStatusMiB(pid, "VmRSS:")
}

func procStatusMiB(pid int, field string) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return float64(kib) / 1024
		}
	}
	return 0
}

// resetPeakRSS resets the peak RSS of process pid to its current RSS
// (Linux: writing 5 to /proc/PID/clear_refs), so that a run's peak is its
// own. It does nothing when that is not possible.
func resetPeakRSS(pid int) {
	if pid <= 0 {
		return
	}
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
