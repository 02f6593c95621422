#!/usr/bin/env bash
# End-to-end smoke test of the Docker image: build it, run it with published ports, upload a
# drop file over FTP (passive mode through the published range) and over SFTP from the host,
# check the verdicts through the HTTP API and the files in ARCHIVES, stop/start the container
# and check that files and credits survived in the volume. .ci/run runs it where an engine starts.
#
#   scripts/docker-smoke.sh [--base-image IMAGE] [--rm-image] [--keep-running] [--check-only]
#
#   --base-image IMAGE  build FROM this image (default: python:3.12-slim if it is present or can
#                       be pulled, otherwise a local allmysms-base:bookworm made by
#                       scripts/make-base-image.sh); BASE_IMAGE=... in the environment works too
#   --rm-image          remove the built image at the end (kept by default: re-runs are faster)
#   --keep-running      leave the container, its volume and any dockerd started here running
#   --check-only        only check the host's needs (python3 with paramiko, docker or root to
#                       install it, coreutils): exit 0 if met, else 1 with what to install
#
# Needs root only to install docker.io/debootstrap or start dockerd when they are missing.
# Host ports: 12121 (FTP), 16022 (SFTP), 18021 (HTTP) and 31100-31109 (FTP passive, published
# 1:1 since PASV announces the container's own port numbers), or the next free block.
# Safe to re-run: leftovers of an earlier run (same container and volume names) are removed first.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO="$PWD"

CONTAINER="allmysms-smoke"
VOLUME="allmysms-smoke-data"
IMAGE="allmysms-mockserver:smoke"
BASE_IMAGE="${BASE_IMAGE:-}"
RM_IMAGE=0
KEEP=0
CHECK_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --base-image) BASE_IMAGE="${2:?--base-image needs a value}"; shift ;;
    --rm-image) RM_IMAGE=1 ;;
    --keep-running) KEEP=1 ;;
    --check-only) CHECK_ONLY=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "docker-smoke: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

# The host's needs, checked before anything starts: one line per missing piece naming what to
# install, instead of a bare ModuleNotFoundError halfway through.
need() { printf '[smoke] missing: %s\n' "$*" >&2; MISSING=$((MISSING + 1)); }
preflight() {
  MISSING=0
  local tool
  for tool in date mktemp sed seq sleep timeout id; do
    command -v "$tool" >/dev/null 2>&1 || need "$tool (install coreutils and sed)"
  done
  if ! command -v python3 >/dev/null 2>&1; then
    need "python3 (install Python 3, e.g. apt-get install python3)"
  elif ! python3 -c 'import paramiko' >/dev/null 2>&1; then
    need "the Python module paramiko for $(command -v python3) (the host-side SFTP client):" \
      "python3 -m pip install paramiko, or apt-get install python3-paramiko"
  fi
  if ! command -v docker >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      need "docker (install Docker Engine, e.g. apt-get install docker.io, or run as root)"
    elif ! command -v apt-get >/dev/null 2>&1; then
      need "docker (install Docker Engine; without apt-get this script cannot install it)"
    fi
  fi
  if [ "$MISSING" -gt 0 ]; then
    printf '[smoke] FAIL: the host lacks %d requirement(s), listed above\n' "$MISSING" >&2
    exit 1
  fi
}
preflight
if [ "$CHECK_ONLY" -eq 1 ]; then
  printf '[smoke] host requirements met\n' >&2
  exit 0
fi

TMP="$(mktemp -d /tmp/allmysms-smoke.XXXXXX)"
DOCKERD_PID=""
STEP=""
STEP_T0=0
RESULTS=()
SCRIPT_T0=$(date +%s)

log() { printf '[smoke] %s\n' "$*" >&2; }
fail() { printf '[smoke] FAIL: %s\n' "$*" >&2; exit 1; }

step() {  # step NAME: close the previous step as PASS and open the next one
  end_step PASS
  STEP="$1"
  STEP_T0=$(date +%s)
  log "== $STEP"
}
end_step() {
  if [ -n "$STEP" ]; then
    RESULTS+=("$(printf '%-4s  %4ss  %s' "$1" "$(($(date +%s) - STEP_T0))" "$STEP")")
    STEP=""
  fi
}

summary() {
  local rc=$1
  echo
  echo "==== docker smoke summary ($(($(date +%s) - SCRIPT_T0))s in all)"
  local r
  for r in "${RESULTS[@]}"; do echo "  $r"; done
  if [ "$rc" -eq 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    end_step FAIL
    if docker inspect "$CONTAINER" >/dev/null 2>&1; then
      log "last container log lines:"
      docker logs --tail 40 "$CONTAINER" 2>&1 | sed 's/^/    /' >&2 || true
    fi
  else
    end_step PASS
  fi
  if [ "$KEEP" -eq 0 ]; then
    docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
    docker volume rm -f "$VOLUME" >/dev/null 2>&1 || true
    if [ "$RM_IMAGE" -eq 1 ]; then docker rmi -f "$IMAGE" >/dev/null 2>&1 || true; fi
    if [ -n "$DOCKERD_PID" ]; then
      log "stopping the dockerd started here (pid $DOCKERD_PID)"
      bash "$REPO/scripts/docker-engine.sh" stop "$DOCKERD_PID"
    fi
  else
    log "--keep-running: container $CONTAINER, volume $VOLUME${DOCKERD_PID:+, dockerd pid $DOCKERD_PID} left running"
  fi
  rm -rf "$TMP"
  summary "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# The host-side client: ftplib (passive), paramiko (SFTP), urllib (HTTP API). One line on error.
cat >"$TMP/client.py" <<'PY'
"""Host-side helper of docker-smoke.sh: FTP/SFTP uploads and HTTP API checks."""
import ftplib
import io
import json
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request


def free_ports() -> None:
    """Print 'ftp sftp http passive_lo passive_hi': the preferred block, else the next free one."""
    def free(port: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
        return True

    # Below Linux's ephemeral range (32768-60999), where client sockets would collide.
    candidates = [(12121, 16022, 18021, 31100)]
    candidates += [(b + 10, b + 11, b + 12, b) for b in range(30000, 32700, 100)]
    for ftp, sftp, http, lo in candidates:
        ports = [ftp, sftp, http, *range(lo, lo + 10)]
        if all(free(p) for p in ports):
            print(ftp, sftp, http, lo, lo + 9)
            return
    sys.exit("no free block of host ports found")


def _connect(ftp: ftplib.FTP, port: str) -> None:
    """Connect in passive mode, taking the PASV reply's address as FTP clients in other
    languages do (ftplib ignores it by default): the masquerade address is checked too."""
    ftp.trust_server_pasv_ipv4_address = True
    ftp.connect("127.0.0.1", int(port), timeout=20)


def ftp_upload(port: str, local: str, name: str) -> None:
    """Upload as <name>.tmp into SEND_SMS in passive mode, then rename (manual's advice)."""
    with ftplib.FTP() as ftp:
        _connect(ftp, port)
        ftp.login("demo", "demo")
        ftp.set_pasv(True)
        ftp.cwd("/SEND_SMS")
        with open(local, "rb") as fh:
            ftp.storbinary("STOR x.tmp", fh)
        ftp.rename("x.tmp", name)


def ftp_list(port: str, folder: str) -> None:
    """Print the names in a folder, listed over a passive data connection."""
    with ftplib.FTP() as ftp:
        _connect(ftp, port)
        ftp.login("demo", "demo")
        for entry in ftp.nlst(folder):
            print(entry.rsplit("/", 1)[-1])


def ftp_get(port: str, path: str) -> None:
    """Download one file in passive mode and print its size."""
    buf = io.BytesIO()
    with ftplib.FTP() as ftp:
        _connect(ftp, port)
        ftp.login("demo", "demo")
        ftp.retrbinary(f"RETR {path}", buf.write)
    print(len(buf.getvalue()))


def sftp_upload(port: str, local: str, name: str) -> None:
    """Upload as <name>.tmp into SEND_SMS over SFTP, then rename."""
    import paramiko

    client = paramiko.SSHClient()
    # A throw-away container's host key: nothing to pin.
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507
    client.connect("127.0.0.1", port=int(port), username="demo", password="demo",
                   look_for_keys=False, allow_agent=False, timeout=20)
    try:
        with client.open_sftp() as sftp:
            sftp.put(local, "/SEND_SMS/y.tmp")
            sftp.rename("/SEND_SMS/y.tmp", f"/SEND_SMS/{name}")
    finally:
        client.close()


def sftp_fingerprint(port: str) -> None:
    """Print the SFTP host key's SHA256 fingerprint (it must survive a restart: /data)."""
    import base64
    import hashlib

    import paramiko

    with socket.create_connection(("127.0.0.1", int(port)), timeout=20) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=20)
            blob = transport.get_remote_server_key().asbytes()
        finally:
            transport.close()
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    print(f"SHA256:{digest}")


def api(port: str, path: str) -> None:
    """GET a JSON document from the control API and print it."""
    url = f"http://127.0.0.1:{port}{path}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        print(json.dumps(json.load(resp)))


def expect_file(port: str, name: str, status: str, sms: str) -> None:
    """Wait (server side, contract 6 wait=) for a file's verdict and check it (contract 5.3)."""
    query = urllib.parse.urlencode({"login": "demo", "name": name, "wait": 15})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/files?{query}", timeout=30) as r:
        files = json.load(r)["files"]
    match = [f for f in files if f.get("original_name") == name]
    if not match:
        sys.exit(f"{name}: not in /api/files: {json.dumps(files)[:300]}")
    got = match[-1]
    want_final = f"TreatedByMSI_{name}"
    if (got.get("status"), str(got.get("sms_count")), got.get("final_name")) != (
        status, sms, want_final
    ):
        sys.exit(f"{name}: expected {status}, {sms} SMS, {want_final}; got {json.dumps(got)[:300]}")
    print(f"{name}: {got['status']} -> {got['final_name']} ({got['sms_count']} SMS)")


def expect_count(port: str, path: str, key: str, count: str) -> None:
    """Check how many items a list endpoint returns (messages, mail)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        items = json.load(r)[key]
    if len(items) != int(count):
        sys.exit(f"{path}: expected {count} {key}, got {len(items)}: {json.dumps(items)[:300]}")
    print(f"{path}: {len(items)} {key}")


def credits(port: str) -> None:
    """Print the demo account's credits."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/accounts/demo", timeout=30) as r:
        print(json.load(r)["credits"])


def expect_credits(port: str, credits: str) -> None:
    """Check the demo account's credits."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/accounts/demo", timeout=30) as r:
        body = json.load(r)
    if str(body.get("credits")) != credits:
        sys.exit(f"demo: expected {credits} credits, got {json.dumps(body)[:300]}")
    print(f"demo: {body.get('credits')} credits")


if __name__ == "__main__":
    try:
        globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
    except (OSError, EOFError, KeyError, ftplib.Error, urllib.error.URLError, ValueError) as exc:
        sys.exit(f"{sys.argv[1]}: {type(exc).__name__}: {exc}")
    except Exception as exc:  # paramiko's own errors, without importing it up front
        sys.exit(f"{sys.argv[1]}: {type(exc).__name__}: {exc}")
PY
client() { python3 "$TMP/client.py" "$@"; }

container_health() { docker inspect --format '{{.State.Health.Status}}' "$CONTAINER" 2>/dev/null; }
wait_healthy() {  # wait_healthy SECONDS
  local deadline=$(($(date +%s) + $1)) state
  while :; do
    state="$(container_health || echo missing)"
    case "$state" in
      healthy) return 0 ;;
      missing) fail "container $CONTAINER is gone" ;;
    esac
    if [ "$(docker inspect --format '{{.State.Running}}' "$CONTAINER")" != "true" ]; then
      fail "container exited (code $(docker inspect --format '{{.State.ExitCode}}' "$CONTAINER"))"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || fail "not healthy after $1 s (health: $state)"
    sleep 1
  done
}

# ---------------------------------------------------------------------------------------------
step "docker engine"
# The running engine, or docker.io installed and dockerd started (as root): docker-engine.sh.
DOCKERD_PID="$(bash "$REPO/scripts/docker-engine.sh" start --log "$TMP/dockerd.log")" \
  || fail "no Docker engine (the reason is above)"

# The legacy builder when the buildx plugin is absent (the Debian docker.io client has none).
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi

step "base image"
if [ -z "$BASE_IMAGE" ]; then
  if docker image inspect python:3.12-slim >/dev/null 2>&1 \
      || timeout 120 docker pull -q python:3.12-slim >/dev/null 2>&1; then
    BASE_IMAGE=python:3.12-slim
  else
    log "python:3.12-slim cannot be pulled: building a local base image"
    BASE_IMAGE="$(bash "$REPO/scripts/make-base-image.sh")"
  fi
fi
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || fail "base image $BASE_IMAGE not found"
log "base image: $BASE_IMAGE"

step "docker build"
if ! docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" "$REPO" >"$TMP/build.log" 2>&1; then
  tail -n 30 "$TMP/build.log" >&2
  fail "docker build failed (last lines above)"
fi
log "image $IMAGE: $(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'), user $(docker image inspect --format '{{.Config.User}}' "$IMAGE")"
[ "$(docker image inspect --format '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] \
  || fail "the image does not run as uid 10001"
docker run --rm "$IMAGE" --help >/dev/null || fail "allmysms-mock --help fails in the image"

step "run container"
docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
docker volume rm -f "$VOLUME" >/dev/null 2>&1 || true
docker volume create "$VOLUME" >/dev/null
read -r FTP_PORT SFTP_PORT HTTP_PORT PASV_LO PASV_HI < <(client free-ports)
log "host ports: ftp=$FTP_PORT sftp=$SFTP_PORT http=$HTTP_PORT passive=$PASV_LO-$PASV_HI"
# Passive ports are the same inside and outside (PASV announces the container's numbers);
# the masquerade address is where the host reaches them. A short health interval for speed.
docker run -d --name "$CONTAINER" \
  -p "127.0.0.1:$FTP_PORT:2121" -p "127.0.0.1:$SFTP_PORT:61022" -p "127.0.0.1:$HTTP_PORT:8021" \
  -p "127.0.0.1:$PASV_LO-$PASV_HI:$PASV_LO-$PASV_HI" \
  -e "ALLMYSMS_MOCK_SERVER_PASSIVE_PORTS=$PASV_LO-$PASV_HI" \
  -e ALLMYSMS_MOCK_SERVER_MASQUERADE_ADDRESS=127.0.0.1 \
  --health-interval 2s --health-start-period 60s \
  -v "$VOLUME:/data" "$IMAGE" >/dev/null

step "healthy"
wait_healthy 90
client api "$HTTP_PORT" /health >&2

step "upload over FTP (passive)"
# Two files of 2 French SMS each, 15 credits an SMS at the default price (contract 5.4).
CREDITS_AFTER=$(($(client credits "$HTTP_PORT") - 2 * 2 * 15))
FTP_NAME="Smoke_20301231120000_HQ.csv"
SFTP_NAME="SmokeSftp_20301231120000_HQ.csv"
printf '"0612345678";"Bonjour STOP au 36180"\r\n"0712345678";"Deuxieme message STOP au 36180"\r\n' \
  >"$TMP/fixture.csv"
client ftp-upload "$FTP_PORT" "$TMP/fixture.csv" "$FTP_NAME"

step "upload over SFTP"
client sftp-upload "$SFTP_PORT" "$TMP/fixture.csv" "$SFTP_NAME"

step "verdicts via HTTP API"
client expect-file "$HTTP_PORT" "$FTP_NAME" archived 2 >&2
client expect-file "$HTTP_PORT" "$SFTP_NAME" archived 2 >&2
client expect-credits "$HTTP_PORT" "$CREDITS_AFTER" >&2
check_records() {  # 2 files x 2 rows: 4 SMS recorded, one recap e-mail per file
  client expect-count "$HTTP_PORT" "/api/messages?login=demo" messages 4 >&2
  client expect-count "$HTTP_PORT" "/api/messages?login=demo&phone=0612345678" messages 2 >&2
  client expect-count "$HTTP_PORT" "/api/mail?login=demo" mail 2 >&2
}
check_records

step "files in ARCHIVES"
check_archives() {
  client ftp-list "$FTP_PORT" /ARCHIVES >"$TMP/archives.txt"
  grep -qx "TreatedByMSI_$FTP_NAME" "$TMP/archives.txt" \
    || fail "TreatedByMSI_$FTP_NAME not in ARCHIVES: $(tr '\n' ' ' <"$TMP/archives.txt")"
  grep -qx "TreatedByMSI_$SFTP_NAME" "$TMP/archives.txt" \
    || fail "TreatedByMSI_$SFTP_NAME not in ARCHIVES: $(tr '\n' ' ' <"$TMP/archives.txt")"
  [ "$(client ftp-get "$FTP_PORT" "/ARCHIVES/TreatedByMSI_$FTP_NAME")" = "$(wc -c <"$TMP/fixture.csv")" ] \
    || fail "the archived file's size differs from the upload"
}
check_archives

step "stop (SIGTERM) and start, data kept"
KEY_BEFORE="$(client sftp-fingerprint "$SFTP_PORT")"
docker stop -t 30 "$CONTAINER" >/dev/null
code="$(docker inspect --format '{{.State.ExitCode}}' "$CONTAINER")"
[ "$code" = "0" ] || fail "exit code $code after SIGTERM (expected 0, contract 2)"
docker start "$CONTAINER" >/dev/null
wait_healthy 90
client expect-file "$HTTP_PORT" "$FTP_NAME" archived 2 >&2
client expect-file "$HTTP_PORT" "$SFTP_NAME" archived 2 >&2
client expect-credits "$HTTP_PORT" "$CREDITS_AFTER" >&2
check_records
check_archives
docker exec "$CONTAINER" test -s /data/ssh_host_ed25519_key || fail "no host key in /data"
KEY_AFTER="$(client sftp-fingerprint "$SFTP_PORT")"
[ "$KEY_AFTER" = "$KEY_BEFORE" ] || fail "SFTP host key changed on restart: $KEY_BEFORE -> $KEY_AFTER"
log "SFTP host key kept: $KEY_AFTER"
