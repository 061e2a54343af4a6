cd /work/main
U=.build/release/uthreads
for r in 1 2 3; do /tmp/peersbuild/gobench pingpong 1000000 5 > /tmp/q/go$r.txt 2>&1; $U bench sync --json > /tmp/q/sync$r.json 2>/tmp/q/sync$r.err; done
for r in 4 5 6; do $U bench sync --json > /tmp/q/sync$r.json 2>/tmp/q/sync$r.err; /tmp/peersbuild/gobench pingpong 1000000 5 > /tmp/q/go$r.txt 2>&1; done
for r in 1 2 3 4 5 6 7; do uptime >> /tmp/q/load.txt; $U bench parallel --json --only fork-join,pipe-wait,spawn > /tmp/q/par$r.json 2>/tmp/q/par$r.err; done
uptime >> /tmp/q/load.txt
echo done > /tmp/q/DONE
# rounds 7-12 of the pair, run by hand right after (same binary):
for r in 7 8 9; do /tmp/peersbuild/gobench pingpong 1000000 5 > go$r.txt; $U bench sync --json > sync$r.json; done
for r in 10 11 12; do $U bench sync --json > sync$r.json; /tmp/peersbuild/gobench pingpong 1000000 5 > go$r.txt; done
