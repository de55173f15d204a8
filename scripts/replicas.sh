#!/usr/bin/env bash
# Plain-process replicas of `fleetpulse serve`, one pid file and log each, for
# hosts without Docker (and for the deploy script's "process" mode).
#
#   scripts/replicas.sh start|stop|restart|status|wait-ready [NAME...]
#
# REPLICAS lists NAME:PORT pairs (default "app1:8081 app2:8082 app3:8083");
# RUN_DIR holds NAME.pid and NAME.log (default ./run). Every other variable
# (DATABASE_URL, REDIS_URL, FLEETPULSE_*) is passed to the servers as it is.
set -Eeuo pipefail

APP_DIR=${APP_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
RUN_DIR=${RUN_DIR:-$APP_DIR/run}
REPLICAS=${REPLICAS:-"app1:8081 app2:8082 app3:8083"}
READY_TIMEOUT=${READY_TIMEOUT:-60}
STOP_TIMEOUT=${STOP_TIMEOUT:-15}
NODE=${NODE:-node}

say() { printf '%s\n' "$*"; }
die() { printf 'replicas: %s\n' "$*" >&2; exit 1; }

port_of() {
  local entry
  for entry in $REPLICAS; do
    if [[ ${entry%%:*} == "$1" ]]; then say "${entry##*:}"; return 0; fi
  done
  die "unknown replica '$1' (REPLICAS=\"$REPLICAS\")"
}

pid_of() {
  local file="$RUN_DIR/$1.pid"
  [[ -f $file ]] || return 1
  local pid
  pid=$(<"$file")
  kill -0 "$pid" 2>/dev/null || return 1
  say "$pid"
}

ready() {
  local url="http://127.0.0.1:$(port_of "$1")/readyz"
  if command -v curl >/dev/null; then
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null
  else
    "$NODE" -e "fetch(process.argv[1],{signal:AbortSignal.timeout(2000)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))" "$url"
  fi
}

wait_ready() {
  local name=$1 waited=0
  until ready "$name"; do
    pid_of "$name" >/dev/null || die "$name exited while starting; see $RUN_DIR/$name.log"
    ((waited >= READY_TIMEOUT * 5)) && die "$name not ready after ${READY_TIMEOUT}s; see $RUN_DIR/$name.log"
    sleep 0.2
    waited=$((waited + 1))
  done
  say "$name ready on port $(port_of "$name")"
}

start() {
  local name=$1 port
  port=$(port_of "$name")
  if pid_of "$name" >/dev/null; then say "$name already running (pid $(pid_of "$name"))"; return 0; fi
  mkdir -p "$RUN_DIR"
  (cd "$APP_DIR" && PORT=$port exec nohup "$NODE" bin/fleetpulse.js serve >>"$RUN_DIR/$name.log" 2>&1 </dev/null) &
  say $! >"$RUN_DIR/$name.pid"
  say "$name started (pid $!, port $port)"
}

# SIGTERM drains the server (readyz 503, in-flight requests finish, lease released); SIGKILL only after STOP_TIMEOUT.
stop() {
  local name=$1 pid waited=0
  if ! pid=$(pid_of "$name"); then say "$name not running"; rm -f "$RUN_DIR/$name.pid"; return 0; fi
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= STOP_TIMEOUT * 10)); then
      say "$name did not stop within ${STOP_TIMEOUT}s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$RUN_DIR/$name.pid"
  say "$name stopped"
}

status() {
  local name=$1 pid
  if pid=$(pid_of "$name"); then
    if ready "$name"; then say "$name running (pid $pid, port $(port_of "$name")), ready"; else say "$name running (pid $pid, port $(port_of "$name")), NOT ready"; fi
  else
    say "$name stopped"
    return 1
  fi
}

command=${1:-}
[[ -n $command ]] || die "usage: scripts/replicas.sh start|stop|restart|status|wait-ready [NAME...]"
shift
names=("$@")
if ((${#names[@]} == 0)); then
  for entry in $REPLICAS; do names+=("${entry%%:*}"); done
fi

code=0
for name in "${names[@]}"; do
  case $command in
    start) start "$name" && wait_ready "$name" ;;
    stop) stop "$name" ;;
    restart) stop "$name" && start "$name" && wait_ready "$name" ;;
    status) status "$name" || code=1 ;;
    wait-ready) wait_ready "$name" ;;
    -h | --help | help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown command '$command' (start|stop|restart|status|wait-ready)" ;;
  esac
done
exit $code
