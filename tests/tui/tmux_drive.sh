#!/usr/bin/env bash
# Drive the real `gradfx tui` in a tmux session as a user would: type an effect's name in the browser, add it,
# run it on a sample image (as a background job, which writes its output), save a copy, quit; then check the
# written files.
#
#   bash tests/tui/tmux_drive.sh [WIDTHxHEIGHT]      (default 80x24; exit 0 = passed)
#
# Needs tmux. Uses the tiny test effect (tests/tui/tiny_plugin.py, loaded with --plugin) on random weights.
# GRADFX_PYTHON names the interpreter whose gradfx is driven (test_tmux.py passes the one running the suite;
# `python` on PATH may be another, without gradfx); its own tmux server keeps out of any other session.
set -euo pipefail
py="${GRADFX_PYTHON:-python}"
size="${1:-80x24}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
export GRADFX_JOBS_DIR="$work/jobs"  # the run's job keeps its state here, not in the user's folder
session="gradfx-drive-$$"
tmux() { command tmux -L "$session" "$@"; }
trap 'tmux kill-server 2>/dev/null || true; rm -rf "$work"' EXIT

"$py" - "$work/sample.png" <<'EOF'
import sys
import numpy as np
from PIL import Image
y, x = np.mgrid[0:40, 0:48] / 40.0
rgb = np.stack([np.sin(3 * x) * 0.5 + 0.5, np.cos(2 * y) * 0.5 + 0.5, (x + y) / 2.4], -1)
Image.fromarray((np.clip(rgb, 0, 1) * 255).astype("uint8")).save(sys.argv[1])
EOF

screen() { tmux capture-pane -p -t "$session"; }
wait_for() {  # wait_for TEXT SECONDS
    local deadline=$((SECONDS + $2))
    until screen | grep -qF -- "$1"; do
        if ((SECONDS > deadline)); then
            echo "tmux_drive: timed out waiting for '$1'; the screen was:" >&2
            screen >&2
            exit 1
        fi
        sleep 0.3
    done
}

tmux new-session -d -s "$session" -x "${size%x*}" -y "${size#*x}" \
    "cd '$work' && PYTHONPATH='$here'\${PYTHONPATH:+:\$PYTHONPATH} GRADFX_OFFLINE=1 '$py' -m gradfx.tui.cli tui sample.png \
     --plugin tiny_plugin --weights random --device cpu; echo \"gradfx exited \$?\"; sleep 30"

wait_for "Effects" 60
wait_for "sample.png 48×40" 30
tmux send-keys -t "$session" t i n y - d       # type-ahead in the effect browser
sleep 0.5
tmux send-keys -t "$session" Enter             # add it to the chain
wait_for "1. tiny-dream" 10
tmux send-keys -t "$session" C-r               # run
wait_for "done in" 120                         # the job wrote sample-tiny-dream.png
tmux send-keys -t "$session" C-s               # save a copy
wait_for "Save output as" 10
tmux send-keys -t "$session" Enter
wait_for "saved sample-tiny-dream-2.png" 20
tmux send-keys -t "$session" C-q
wait_for "gradfx exited 0" 20

"$py" - "$work/sample-tiny-dream.png" "$work/sample-tiny-dream-2.png" <<'EOF'
import sys
from PIL import Image
for path in sys.argv[1:]:
    with Image.open(path) as im:
        assert im.size == (48, 40), im.size
assert open(sys.argv[1], "rb").read() == open(sys.argv[2], "rb").read(), "the copy differs"
print("tmux_drive: ok,", " and ".join(p.rsplit("/", 1)[-1] for p in sys.argv[1:]), "written")
EOF
