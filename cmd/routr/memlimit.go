package main

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimitShare is the part of the container's memory limit given to
// the Go runtime as its soft limit when GOMEMLIMIT is not set: the rest
// is for what the runtime does not count (the binary's mapped code,
// thread stacks outside Go).
const memoryLimitShare = 0.9

// setDefaultMemoryLimit sets the runtime's soft memory limit to 90% of
// the memory limit of the process's cgroup, when there is one and
// GOMEMLIMIT is not set (the runtime reads that itself). Without it the
// garbage collector lets the heap grow to twice what is live (GOGC=100)
// whatever the container allows, and the kernel kills the process where
// a collection would have freed enough. It returns the limit set, 0 for
// none.
func setDefaultMemoryLimit(env func(string) string) int64 {
	if env("GOMEMLIMIT") != "" {
		return 0
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	limit := cgroupMemoryLimit(os.DirFS("/sys/fs/cgroup"), self)
	if limit <= 0 {
		return 0
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	return soft
}

// cgroupMemoryLimit returns the memory limit in bytes that applies to the
// process whose /proc/self/cgroup is self, read from the cgroup file
// system root: the smallest memory.max of its cgroup v2 and the cgroups
// above it, or cgroup v1's memory.limit_in_bytes. 0 means no limit.
func cgroupMemoryLimit(root fs.FS, self []byte) int64 {
	var v2, v1 string
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case hasController(parts[1], "memory"):
			v1 = parts[2]
		}
	}
	if v2 != "" {
		// In a container's cgroup namespace the path is "/", the
		// container's own cgroup at the root.
		var limit int64
		for p := path.Clean(v2); ; p = path.Dir(p) {
			if l := readLimit(root, path.Join(strings.TrimPrefix(p, "/"), "memory.max")); l > 0 && (limit == 0 || l < limit) {
				limit = l
			}
			if p == "/" || p == "." {
				break
			}
		}
		if limit > 0 {
			return limit
		}
	}
	// A v1 memory controller (alone, or beside a v2 hierarchy without
	// it).
	if v1 != "" {
		for _, p := range []string{path.Join("memory", strings.TrimPrefix(path.Clean(v1), "/")), "memory"} {
			// v1 reports no limit as a huge number (a page-rounded
			// MaxInt64).
			if l := readLimit(root, path.Join(p, "memory.limit_in_bytes")); l > 0 && l < 1<<60 {
				return l
			}
		}
	}
	return 0
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// readLimit reads a limit file: a number of bytes, or "max" (none: 0).
func readLimit(root fs.FS, name string) int64 {
	data, err := fs.ReadFile(root, name)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}
