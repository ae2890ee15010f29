#!/bin/sh
# Instructions per op of Go benchmarks, counted by valgrind's callgrind:
# unlike ns/op, the count barely moves when other processes load the
# machine. Each benchmark runs at -benchtime 1000x and 3000x; the
# difference over 2000 is what one op costs (set-up cancels out).
#
#   bench/callgrind.sh <package> <benchmark regexp>...
#   bench/callgrind.sh ./internal/edge EdgeRegisterAuthenticated EdgeForwardMessage
#
# Needs valgrind (apt-get install valgrind). Async preemption is off: its
# signals trip callgrind.
set -eu
pkg=$1
shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/pkg.test" "$pkg"
cd "$pkg"
for b in "$@"; do
	for n in 1000 3000; do
		GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$n" \
			"$dir/pkg.test" -test.run '^$' -test.bench "^Benchmark$b\$" -test.benchtime=${n}x -test.cpu 2 \
			>"$dir/log.$n" 2>&1
		grep -o 'Collected : [0-9]*' "$dir/log.$n" | awk '{print $3}' >"$dir/ir.$n"
	done
	echo "$b $(( ($(cat "$dir/ir.3000") - $(cat "$dir/ir.1000")) / 2000 )) instructions/op"
done
