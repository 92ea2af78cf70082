#!/usr/bin/env bash
# before = a6f792f (git archive, same target dir), after = the metrics commit; A/B interleaved.
set -u
for round in 1 2 3 4; do
  for which in before after; do
    bin=/work/bench-base-metrics/hot_paths-$which
    [ $which = before ] && bin=/work/bench-base-metrics/hot_paths-base
    taskset -c 0 $bin --bench --noplot --warm-up-time 1 --measurement-time 2 > raw/$which-$round.txt 2>&1
  done
done
