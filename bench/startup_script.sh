#!/usr/bin/env bash
# The exec-heavy script run_startup.sh times: 200 rounds of 5 commands, each
# its own process (1,000 execs), most of which allocate a little.
for ((i = 0; i < 200; i++)); do
  /bin/true
  x=$(expr "$i" + 1)
  y=$(basename "/a/b/c$x")
  echo "$y" | tr a-z A-Z > /dev/null
  date +%s > /dev/null
done
