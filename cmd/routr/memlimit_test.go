package main

import (
	"testing"
	"testing/fstest"
)

func TestCgroupMemoryLimit(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name  string
		self  string
		files fstest.MapFS
		want  int64
	}{
		{"v2 container", "0::/\n", fstest.MapFS{"memory.max": file("536870912\n")}, 512 << 20},
		{"v2 no limit", "0::/\n", fstest.MapFS{"memory.max": file("max\n")}, 0},
		{"v2 service under a limited slice", "0::/system.slice/routr.service\n", fstest.MapFS{
			"system.slice/routr.service/memory.max": file("max\n"),
			"system.slice/memory.max":               file("1073741824\n"),
		}, 1 << 30},
		{"v2 smallest of the path", "0::/a/b\n", fstest.MapFS{
			"a/b/memory.max": file("2147483648\n"),
			"a/memory.max":   file("1073741824\n"),
		}, 1 << 30},
		{"v1", "12:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n", fstest.MapFS{
			"memory/docker/abc/memory.limit_in_bytes": file("268435456\n"),
		}, 256 << 20},
		{"v1 in a cgroup namespace", "4:memory:/docker/abc\n", fstest.MapFS{
			"memory/memory.limit_in_bytes": file("268435456\n"),
		}, 256 << 20},
		{"v1 no limit", "4:cpuset,memory:/\n", fstest.MapFS{
			"memory/memory.limit_in_bytes": file("9223372036854771712\n"),
		}, 0},
		{"hybrid: v2 without memory, v1 limited", "4:memory:/x\n0::/\n", fstest.MapFS{
			"memory/x/memory.limit_in_bytes": file("268435456\n"),
		}, 256 << 20},
		{"garbage", "0::/\n", fstest.MapFS{"memory.max": file("lots\n")}, 0},
		{"no cgroup", "", fstest.MapFS{}, 0},
	} {
		if got := cgroupMemoryLimit(tc.files, []byte(tc.self)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestDefaultMemoryLimitLeavesGOMEMLIMIT(t *testing.T) {
	env := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "100MiB"
		}
		return ""
	}
	if got := setDefaultMemoryLimit(env); got != 0 {
		t.Errorf("with GOMEMLIMIT set, a default limit %d was set", got)
	}
}
