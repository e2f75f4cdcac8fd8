#!/usr/bin/env bash
# A run that outlives its terminal: start a chain from the real `gradfx tui` in tmux, kill the tmux session
# while the job runs (the TUI gets SIGHUP, as when an SSH connection drops), then start `gradfx tui` in two new
# sessions: both are back on the job, still running, with live progress, and its output is written when it
# finishes.
#
#   bash tests/tui/tmux_jobs.sh      (exit 0 = passed)
#
# Needs tmux. DeepDream on VGG16 with seeded random weights, 400 steps on a 48 x 40 image. The job's worker
# is stopped (SIGSTOP) while the new sessions start, so it cannot end before they look, then let go
# (SIGCONT). GRADFX_PYTHON names the interpreter whose gradfx is driven; its own tmux server keeps out of any
# other session, and the jobs' state goes to a temporary folder.
set -euo pipefail
py="${GRADFX_PYTHON:-python}"
work="$(mktemp -d)"
server="gradfx-jobs-$$"
export GRADFX_JOBS_DIR="$work/jobs" GRADFX_OFFLINE=1 GRADFX_PLUGINS=none
tmux() { command tmux -L "$server" "$@"; }
job() {  # job FIELD: the TUI's job's status, or its worker's pid
    "$py" - "$1" <<'EOF'
import sys
from gradfx.engine import jobs
(job,) = jobs.all_jobs()
state = job.refresh()
print(state["status"] if sys.argv[1] == "status" else (state.get("worker") or {}).get("pid", ""))
EOF
}
cleanup() {
    local pid
    pid="$(job pid 2>/dev/null || true)"
    [[ -n "$pid" ]] && kill -CONT "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    tmux kill-server 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cd "$work"
"$py" - <<'EOF'
import numpy as np
from PIL import Image
y, x = np.mgrid[0:40, 0:48] / 40.0
rgb = np.stack([np.sin(3 * x) * 0.5 + 0.5, np.cos(2 * y) * 0.5 + 0.5, (x + y) / 2.4], -1)
Image.fromarray((np.clip(rgb, 0, 1) * 255).astype("uint8")).save("sample.png")
EOF
cat > slow.toml <<'EOF'
input = "sample.png"
weights = "random"
model = "vgg16"

[[step]]
effect = "deepdream"
layers = "block3_conv1:1"
octaves = 1
steps = 400
EOF

screen() { tmux capture-pane -p -t "$1"; }
wait_for() {  # wait_for SESSION TEXT SECONDS
    local deadline=$((SECONDS + $3))
    until screen "$1" | grep -qF -- "$2"; do
        if ((SECONDS > deadline)); then
            echo "tmux_jobs: timed out waiting for '$2' in $1; the screen was:" >&2
            screen "$1" >&2
            exit 1
        fi
        sleep 0.3
    done
}
step() { screen "$1" | grep -o 'step [0-9]*/400' | head -1 | grep -o '[0-9]*/' | tr -d /; }
tui() {  # tui SESSION [ARGS...]: the real gradfx tui in a new session, 120 x 32
    local name="$1"
    shift
    tmux new-session -d -s "$name" -x 120 -y 32 \
        "cd '$work' && '$py' -m gradfx.tui.cli tui --device cpu $*; echo \"gradfx exited \$?\"; sleep 60"
}

tui first --recipe slow.toml
wait_for first "sample.png 48×40" 90
tmux send-keys -t first C-r                    # the chain starts as a background job
wait_for first "/400" 180                      # its worker runs: live progress
tmux kill-session -t first                     # the terminal goes: the TUI gets SIGHUP
[[ "$(job status)" == running ]] || { echo "tmux_jobs: the job did not outlive its TUI: $(job status)" >&2; exit 1; }
worker="$(job pid)"
kill -STOP "$worker"                           # hold it while the new TUIs start

tui second
tui third
for s in second third; do
    wait_for "$s" "following job" 90           # reattached, said in a toast
    wait_for "$s" "/400" 30                    # the job's progress, still running
done
before_second="$(step second)" before_third="$(step third)"
kill -CONT "$worker"
deadline=$((SECONDS + 120))
until [[ "$(step second)" != "$before_second" && "$(step third)" != "$before_third" ]]; do
    ((SECONDS < deadline)) || { echo "tmux_jobs: the progress did not move in both TUIs" >&2; screen second >&2; exit 1; }
    sleep 0.3
done
for s in second third; do
    wait_for "$s" "done in" 180                # both see the job end
done
[[ "$(job status)" == done ]]
"$py" - <<'EOF'
from PIL import Image
with Image.open("sample-deepdream.png") as im:
    assert im.size == (48, 40), im.size
EOF
for s in second third; do
    tmux send-keys -t "$s" C-q
    wait_for "$s" "gradfx exited 0" 20
done
echo "tmux_jobs: ok, the job outlived its TUI, two TUIs followed it, sample-deepdream.png written"
