#!/usr/bin/env bash
# One command: upstreamd vs nginx on loopback, results in bench/results/LATEST.md.
# Usage: bench/run.sh [flags of bench/cmd/bench]   (e.g. -d 5s -reps 5 -workers 1)
# Env:   BENCH_DURATION=3s BENCH_REPS=3 BENCH_CONNS=64 BENCH_WORKERS=1,auto BENCH_PIN=1
#        BENCH_OUT=bench/results/LATEST.md BENCH_KEEP=1 (keep the scratch dir and its logs)
# See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need+=(libnginx-mod-http-lua)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
case " $* " in
*" -instructions "* | *" -instructions=true "*) command -v valgrind >/dev/null 2>&1 || need+=(valgrind) ;;
esac
if ((${#need[@]})); then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	echo "bench: installing ${need[*]}" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi
command -v go >/dev/null 2>&1 || { echo "bench: go not found" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/upstreamd-bench.XXXXXX")
cleanup() {
	# The Go driver stops everything it started; this is the safety net for
	# when it was killed: every server runs in its own process group.
	if [ -f "$work/pgids" ]; then
		while read -r g; do kill -KILL -- "-$g" 2>/dev/null || true; done <"$work/pgids"
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: scratch directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

go build -o "$work/bench" ./bench/cmd/bench
"$work/bench" -work "$work" "$@"
