#!/bin/bash
# The quick Table 1 grid (5 runs, seed 0) on the local pool (2 and 1 at a time) and on
# one and two local Ray nodes of one CPU each, one after another; every run builds its
# own photo banks. Wall seconds go to ROOT/times.txt (docs/RESULTS.md, "Many runs on Ray").
#
#     bash benchmarks/ray_throughput.sh ROOT        # needs dreamfusion[ray] installed
set -u
R=${1:?usage: ray_throughput.sh ROOT}
mkdir -p "$R"
export RAY_USAGE_STATS_ENABLED=0 DREAMFUSION_NO_CACHE=1
run() {  # name, experiment options...
  local name=$1; shift
  rm -rf "$R/$name"
  local t0 t1 rc
  t0=$(date +%s.%N)
  dreamfusion experiment table1 --quick --root "$R/$name" --results "$R/$name.md" "$@" \
      > "$R/$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  echo "$name rc=$rc seconds=$(echo "$t1 - $t0" | bc)" | tee -a "$R/times.txt"
}
cluster() {  # number of nodes (1 or 2), one CPU each
  ray stop --force > /dev/null 2>&1
  ray start --head --port=6390 --num-cpus=1 --num-gpus=0 --include-dashboard=false \
      --disable-usage-stats > /dev/null 2>&1
  if [ "$1" = 2 ]; then
    ray start --address=127.0.0.1:6390 --num-cpus=1 --num-gpus=0 > /dev/null 2>&1
  fi
}
run pool-jobs2 --jobs 2
run pool-jobs1 --jobs 1
cluster 1; run ray-1node --executor ray --address 127.0.0.1:6390
cluster 2; run ray-2nodes --executor ray --address 127.0.0.1:6390
ray stop --force > /dev/null 2>&1
