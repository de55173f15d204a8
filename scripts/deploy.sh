#!/usr/bin/env bash
# Zero-downtime deploy: doctor -> backup -> build -> migrate -> restart the
# replicas one at a time (each must answer /readyz before the next) -> verify
# (doctor + a heartbeat smoke test). If anything after the backup fails, it
# rolls back: migrations down to where they were, the previous build, the
# backup restored, the replicas restarted again.
#
#   scripts/deploy.sh            (configure with the variables below)
#
# DEPLOY_MODE      compose (default) or process
#   compose:  COMPOSE_FILE (docker-compose.prod.yml), SERVICES ("app1 app2 app3"),
#             MONITOR_SERVICES ("monitor"), TOOLS_SERVICE (tools), IMAGE (fleetpulse:latest)
#   process:  the replicas of scripts/replicas.sh: REPLICAS ("app1:8081 ..."), RUN_DIR
# BUILD_CMD        how to build (compose: docker compose build; process: npm ci && npm run build)
# SMOKE_URL        where devices send heartbeats (compose: http://nginx; process: first replica)
# BACKUP_DIR       where the pre-deploy backup goes (backups)
# ROLLBACK_RESTORE yes (default): restore the backup on rollback; no: schema rollback only
# REPLICA_PAUSE    seconds between replicas (2)
# SAVE_BUILD_CMD / RESTORE_BUILD_CMD  override how the previous build is kept and put back
# DEPLOY_FAIL_AT   rehearse a rollback: fail on purpose at build|migrate|restart|verify
set -Eeuo pipefail

APP_DIR=${APP_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$APP_DIR"
DEPLOY_MODE=${DEPLOY_MODE:-compose}
BACKUP_DIR=${BACKUP_DIR:-backups}
ROLLBACK_RESTORE=${ROLLBACK_RESTORE:-yes}
REPLICA_PAUSE=${REPLICA_PAUSE:-2}
READY_TIMEOUT=${READY_TIMEOUT:-60}
DEPLOY_FAIL_AT=${DEPLOY_FAIL_AT:-}
STAMP=$(date -u +%Y%m%d-%H%M%S)
BACKUP_FILE="$BACKUP_DIR/pre-deploy-$STAMP.backup"

COMPOSE_FILE=${COMPOSE_FILE:-docker-compose.prod.yml}
SERVICES=${SERVICES:-"app1 app2 app3"}
MONITOR_SERVICES=${MONITOR_SERVICES:-monitor}
TOOLS_SERVICE=${TOOLS_SERVICE:-tools}
IMAGE=${IMAGE:-fleetpulse:latest}
RUN_DIR=${RUN_DIR:-$APP_DIR/run}
REPLICAS=${REPLICAS:-"app1:8081 app2:8082 app3:8083"}
export RUN_DIR REPLICAS READY_TIMEOUT

step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
fail() { printf '\n!!! %s\n' "$*" >&2; }

case $DEPLOY_MODE in
  compose)
    docker compose version >/dev/null 2>&1 || { fail "docker compose is not available here: install Docker Compose, or use DEPLOY_MODE=process"; exit 2; }
    compose() { docker compose -f "$COMPOSE_FILE" "$@"; }
    fleetpulse() { compose run --rm --no-deps -T "$TOOLS_SERVICE" "$@"; }
    BUILD_CMD=${BUILD_CMD:-"docker compose -f $COMPOSE_FILE build"}
    SMOKE_URL=${SMOKE_URL:-http://nginx}
    replica_names() { echo "$SERVICES $MONITOR_SERVICES"; }
    restart_replica() { compose up -d --no-deps --force-recreate "$1"; }
    replica_ready() {
      case " $MONITOR_SERVICES " in *" $1 "*) return 0 ;; esac # the monitor serves no HTTP
      compose exec -T "$1" node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"
    }
    replica_alive() { [[ -n $(compose ps -q --status running "$1") ]]; }
    save_build() { docker image inspect "$IMAGE" >/dev/null 2>&1 && docker image tag "$IMAGE" "${IMAGE%:*}:previous"; }
    restore_build() { docker image tag "${IMAGE%:*}:previous" "$IMAGE"; }
    ;;
  process)
    fleetpulse() { node "$APP_DIR/bin/fleetpulse.js" "$@"; }
    BUILD_CMD=${BUILD_CMD:-"npm ci && npm run build"}
    first=${REPLICAS%% *}
    SMOKE_URL=${SMOKE_URL:-http://127.0.0.1:${first##*:}}
    replica_names() { for entry in $REPLICAS; do printf '%s ' "${entry%%:*}"; done; }
    restart_replica() { "$APP_DIR/scripts/replicas.sh" stop "$1" && "$APP_DIR/scripts/replicas.sh" start "$1"; }
    replica_ready() {
      local entry port
      for entry in $REPLICAS; do [[ ${entry%%:*} == "$1" ]] && port=${entry##*:}; done
      curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/readyz" 2>/dev/null
    }
    replica_alive() { [[ -f $RUN_DIR/$1.pid ]] && kill -0 "$(<"$RUN_DIR/$1.pid")" 2>/dev/null; }
    # The build replaces dist/ in place; keep a copy to go back to.
    save_build() { rm -rf "$RUN_DIR/dist.previous" && mkdir -p "$RUN_DIR" && cp -a dist "$RUN_DIR/dist.previous"; }
    restore_build() { cp -a "$RUN_DIR/dist.previous/." dist/; }
    ;;
  *) fail "DEPLOY_MODE must be compose or process, not '$DEPLOY_MODE'"; exit 2 ;;
esac

if [[ -n ${SAVE_BUILD_CMD:-} ]]; then save_build() { bash -c "$SAVE_BUILD_CMD"; }; fi
if [[ -n ${RESTORE_BUILD_CMD:-} ]]; then restore_build() { bash -c "$RESTORE_BUILD_CMD"; }; fi

maybe_fail() { if [[ $DEPLOY_FAIL_AT == "$1" ]]; then fail "DEPLOY_FAIL_AT=$1: failing on purpose (rollback rehearsal)"; return 1; fi; }

applied_count() { fleetpulse migrate status | grep -c '^applied' || true; }

wait_ready() {
  local name=$1 tries=$((READY_TIMEOUT * 2))
  while ((tries-- > 0)); do
    if replica_ready "$name"; then return 0; fi
    replica_alive "$name" || { fail "$name is not running"; return 1; }
    sleep 0.5
  done
  fail "$name did not answer /readyz within ${READY_TIMEOUT}s"
  return 1
}

rolling_restart() {
  local name
  for name in $(replica_names); do
    info "restarting $name"
    restart_replica "$name" >/dev/null || { fail "could not restart $name"; return 1; }
    wait_ready "$name" || return 1
    info "$name is ready"
    maybe_fail restart || return 1
    sleep "$REPLICA_PAUSE"
  done
}

# Right after a restart the monitor lease may be changing hands: doctor gets three tries.
verify() {
  local try
  for try in 1 2 3; do
    if fleetpulse doctor; then fleetpulse smoke --url "$SMOKE_URL"; return; fi
    ((try < 3)) && { info "doctor failed; checking again in 2 s"; sleep 2; }
  done
  return 1
}

BUILT=no
APPLIED_BEFORE=
rollback() {
  set +e
  fail "deploy failed at: $1 — rolling back"
  local ok=yes now
  if [[ -n $APPLIED_BEFORE ]]; then
    now=$(applied_count)
    if ((now > APPLIED_BEFORE)); then
      step "rollback: migrate down $((now - APPLIED_BEFORE)) step(s) (with the new build, which knows how)"
      fleetpulse migrate down --step $((now - APPLIED_BEFORE)) || { fail "migrate down failed"; ok=no; }
    fi
  fi
  if [[ $BUILT == yes ]]; then
    step "rollback: back to the previous build"
    restore_build || { fail "could not restore the previous build"; ok=no; }
  fi
  if [[ $ROLLBACK_RESTORE == yes || $ok == no ]]; then
    step "rollback: restore $BACKUP_FILE"
    fleetpulse restore "$BACKUP_FILE" --force || { fail "restore failed: restore by hand (docs/operations.md, Roll back)"; ok=no; }
  fi
  step "rollback: restart the replicas on the previous build"
  rolling_restart || { fail "rolling restart after rollback failed"; ok=no; }
  step "rollback: verify"
  verify || ok=no
  if [[ $ok == yes ]]; then
    fail "ROLLED BACK: the previous version is serving again; the backup is $BACKUP_FILE"
  else
    fail "ROLLBACK INCOMPLETE: see the messages above and docs/operations.md (Roll back); the backup is $BACKUP_FILE"
  fi
  exit 1
}

LOCK="$APP_DIR/.deploy.lock"
mkdir "$LOCK" 2>/dev/null || { fail "another deploy is running (remove $LOCK if it is not)"; exit 1; }
trap 'rmdir "$LOCK" 2>/dev/null || true' EXIT

step "1/6 doctor: is it safe to deploy?"
fleetpulse doctor || { fail "doctor found a failing check: nothing was changed"; exit 1; }

step "2/6 backup"
mkdir -p "$BACKUP_DIR"
fleetpulse backup --out "$BACKUP_FILE" || { fail "backup failed: nothing was changed"; exit 1; }
APPLIED_BEFORE=$(applied_count)
info "schema: $APPLIED_BEFORE migration(s) applied"

step "3/6 build"
save_build || true
BUILT=yes
{ bash -c "$BUILD_CMD" && maybe_fail build; } || rollback build

step "4/6 migrate"
{ fleetpulse migrate up && maybe_fail migrate; } || rollback migrate

step "5/6 restart replicas one at a time"
rolling_restart || rollback restart

step "6/6 verify"
{ verify && maybe_fail verify; } || rollback verify

step "deployed: $(applied_count) migration(s) applied; backup kept at $BACKUP_FILE"
