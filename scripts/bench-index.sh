#!/usr/bin/env bash
# Measures `lines index` and `lines verify` against `wc -l` on a 1 GB file
# in the page cache, side by side with hyperfine (Debian: apt-get install
# hyperfine), and writes the table to bench-results/index.md.
#
#   scripts/bench-index.sh            # SIZE=1000000000 bytes, in /tmp/lines-bench-index
#   KEEP=1 scripts/bench-index.sh     # keep the files (about 1.5 GB) for the next run
#
# The files it makes (the data, its indexes, the lines binary) are removed
# at the end, whether it succeeds or not, unless KEEP=1: then it says where
# they are and how much room they take. Files of DIR that it did not make
# are never touched.
# The file is testdata/sample.txt repeated (47 bytes a line on average, the
# many-lines case), cut at SIZE bytes. The index is written once beside
# the data and once to /dev/shm (memory), to tell the scan from the disk.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${SIZE:-1000000000}
dir=${DIR:-/tmp/lines-bench-index}
mkdir -p "$dir" bench-results
data=$dir/data-$size.txt
command -v hyperfine >/dev/null || { echo "bench-index: hyperfine is not installed (apt-get install hyperfine)" >&2; exit 2; }

shm=/dev/shm/lines-bench-index-$$.txt
made=("$data" "$dir/grow.txt" "$dir/grow2.txt" "$dir/ref_index.txt" "$dir/out_index.txt" "$dir/lines")
cleanup() {
	rm -f "$shm"
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "bench-index: KEEP=1: the files are in $dir ($(du -sh "$dir" | cut -f1)); remove them with: rm -r $dir"
		return
	fi
	rm -f "${made[@]}"
	rmdir "$dir" 2>/dev/null || true
	echo "bench-index: removed the files it made in $dir (KEEP=1 keeps them for the next run)"
}
trap cleanup EXIT

go build -o "$dir/lines" ./cmd/lines
if [ ! -f "$data" ] || [ "$(stat -c %s "$data")" != "$size" ]; then
	echo "bench-index: making $data"
	cp testdata/sample.txt "$dir/grow.txt"
	while [ "$(stat -c %s "$dir/grow.txt")" -lt "$size" ]; do
		cat "$dir/grow.txt" "$dir/grow.txt" >"$dir/grow2.txt"
		mv "$dir/grow2.txt" "$dir/grow.txt"
	done
	head -c "$size" "$dir/grow.txt" >"$data"
	rm -f "$dir/grow.txt"
fi
"$dir/lines" index "$data" -o "$dir/ref_index.txt"
cat "$data" "$dir/ref_index.txt" >/dev/null # into the page cache

echo "bench-index: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
# Each index is removed before each run: replacing an existing file by a
# rename makes ext4 flush the new one (auto_da_alloc), which a first build
# does not pay.
hyperfine -N -w 2 -r 10 --export-markdown bench-results/index.md \
	--prepare true --prepare "rm -f $dir/out_index.txt" --prepare "rm -f $shm" --prepare true \
	-n "wc -l" "wc -l $data" \
	-n "lines index" "$dir/lines index $data -o $dir/out_index.txt" \
	-n "lines index (to /dev/shm)" "$dir/lines index $data -o $shm" \
	-n "lines verify" "$dir/lines verify $data $dir/ref_index.txt"
echo "bench-index: table in bench-results/index.md"
