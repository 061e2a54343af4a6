#!/usr/bin/env bash
# run-bounded.sh SECONDS COMMAND [ARGUMENTS…] — runs COMMAND with line-buffered output; if it is
# still running after SECONDS, kills it and every process it started, and exits 124.
#
# Why not timeout(1): it signals its child's process group, and `swift test` starts the test
# binary in a process group of its own, so a hung test process outlived the killed `swift test`
# (seen on this machine). COMMAND runs here in a session of its own (setsid), and the whole
# session is killed: every process it started, whatever its group. Leftovers in the session are
# killed when COMMAND ends normally too.
#
# Why a bound at all: on Swift Testing 6.3.1 only an async test is stopped at its .timeLimit; a
# synchronous test that hangs (every UThreadRuntime.run is one) is reported at its limit ("Time
# limit was exceeded: 60.000 seconds") and then waited for forever. stdbuf: Swift Testing's
# output to a pipe is block-buffered, and would be lost with a killed process.
set -u
limit=$1; shift
setsid stdbuf -oL -eL "$@" &
session=$!  # setsid execs in place (a background job of a script is no group leader): pid = sid
kill_session() { pkill -KILL -s "$session" 2>/dev/null || kill -KILL -- "-$session" 2>/dev/null; }
# Waits for COMMAND to end (tail polls it once a second), for at most SECONDS.
if timeout "$limit" tail --pid="$session" -f /dev/null; then
    wait "$session"
    status=$?
else
    echo "== run-bounded: '$*' still running after ${limit}s: killing it and everything it started" >&2
    kill_session
    wait "$session" 2>/dev/null
    status=124
fi
kill_session  # whatever COMMAND left behind
exit "$status"
