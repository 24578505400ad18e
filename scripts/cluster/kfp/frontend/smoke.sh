#!/usr/bin/env bash
# Runs the built dashboard image (build.sh) on 127.0.0.1 and checks it the way the cluster uses
# it: upstream's command with another port argument, the env the Deployment gets, a stand-in
# for ml-pipeline's healthz and for metadata-envoy-service (a recorder: what the server forwards
# to it for grpc-web), then headless Chromium loads the page and saves a screenshot.
# Usage: scripts/cluster/kfp/frontend/smoke.sh [SCREENSHOT.png]
#   default screenshot: ~/.cache/symptom-dx/kfp-frontend/smoke/screenshot.png
# The server listens on every interface (app.listen(port)); with --network host that would be
# the machine's, so this run preloads a 10-line shim that binds it to 127.0.0.1 (the image and
# its command are unchanged).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
IMAGE=${KFP_FRONTEND_IMAGE:-localhost/symptomdx/kfp-frontend:2.14.3}
WORK=${KFP_FRONTEND_WORK:-$HOME/.cache/symptom-dx/kfp-frontend}
out=${1:-$WORK/smoke/screenshot.png}
mkdir -p "$(dirname "$out")"
docker image inspect "$IMAGE" >/dev/null 2>&1 || { echo "smoke: no $IMAGE; run build.sh" >&2; exit 1; }
bash "$repo/scripts/apt-deps.sh" chromium curl

tmp=$(mktemp -d)
name=kfp-frontend-smoke-$$
fake_pid=""
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ui=$(free_port); api=$(free_port); envoy=$(free_port)

cat >"$tmp/loopback.js" <<'JS'
// Binds servers that listen on a bare port to 127.0.0.1 instead of every interface.
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const port = args[0];
  if ((typeof port === 'number' || /^\d+$/.test(String(port))) &&
      (args.length === 1 || typeof args[1] === 'function')) args.splice(1, 0, '127.0.0.1');
  return listen.apply(this, args);
};
JS

# Stand-ins: ml-pipeline's /apis/v1beta1/healthz, and a grpc-web endpoint that records each
# request and answers an empty OK (a grpc-web trailers frame with grpc-status 0).
cat >"$tmp/fake.py" <<'PY'
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
api_port, envoy_port, record = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/healthz"):
            body = json.dumps({"commit_sha": "fake-api", "tag_name": "fake", "multi_user": False}).encode()
            self.send_response(200); self.send_header("Content-Type", "application/json")
        else:
            body = b'{"error":"fake api server"}'; self.send_response(503)
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass

class Envoy(BaseHTTPRequestHandler):
    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(record, "a") as f:
            f.write(json.dumps({"path": self.path, "host": self.headers.get("Host"),
                                "content_type": self.headers.get("Content-Type"),
                                "x_grpc_web": self.headers.get("X-Grpc-Web"),
                                "body_len": len(data)}) + "\n")
        trailer = b"grpc-status:0\r\ngrpc-message:\r\n"
        body = b"\x80" + len(trailer).to_bytes(4, "big") + trailer
        self.send_response(200); self.send_header("Content-Type", "application/grpc-web+proto")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass

for port, h in ((api_port, Api), (envoy_port, Envoy)):
    threading.Thread(target=ThreadingHTTPServer(("127.0.0.1", port), h).serve_forever, daemon=True).start()
threading.Event().wait()
PY
python3 "$tmp/fake.py" "$api" "$envoy" "$tmp/grpcweb.jsonl" &
fake_pid=$!

# The Deployment's env (secrets and namespaces made up), the service-link variables Kubernetes
# would inject for the ml-pipeline and metadata-envoy-service Services, and the port argument.
docker run -d --name "$name" --network host \
  -v "$tmp/loopback.js:/smoke/loopback.js:ro" -e NODE_OPTIONS=--require=/smoke/loopback.js \
  -e ML_PIPELINE_SERVICE_HOST=127.0.0.1 -e ML_PIPELINE_SERVICE_PORT="$api" \
  -e METADATA_ENVOY_SERVICE_SERVICE_HOST=127.0.0.1 -e METADATA_ENVOY_SERVICE_SERVICE_PORT="$envoy" \
  -e MINIO_NAMESPACE=kubeflow -e MINIO_ACCESS_KEY=minio -e MINIO_SECRET_KEY=minio123 \
  -e ALLOW_CUSTOM_VISUALIZATIONS=true -e FRONTEND_SERVER_NAMESPACE=kubeflow \
  -e ARGO_ARCHIVE_LOGS=true -e DISABLE_GKE_METADATA=true \
  "$IMAGE" node dist/server.js ../client/ "$ui" >/dev/null
t0=$SECONDS
until curl -fsS -o /dev/null "http://127.0.0.1:$ui/" 2>/dev/null; do
  if [ $((SECONDS - t0)) -gt 60 ] || [ "$(docker inspect -f '{{.State.Running}}' "$name")" != true ]; then
    echo "smoke: the server did not answer on 127.0.0.1:$ui; its log:" >&2
    docker logs "$name" 2>&1 | tail -20 >&2
    exit 1
  fi
  sleep 0.5
done
echo "smoke: server answers on 127.0.0.1:$ui after $((SECONDS - t0)) s (user $(docker exec "$name" id -u):$(docker exec "$name" id -g), $(docker exec "$name" node -v))"
# Nothing else listens: the shim held.
if ss -ltnH | awk '{print $4}' | grep -Eq "^(\*|0\.0\.0\.0|\[::\]):$ui$"; then
  echo "smoke: the server listens beyond 127.0.0.1" >&2; exit 1
fi

fail=0
check() { # NAME COMMAND...: runs COMMAND, reports NAME as ok or FAIL
  local what=$1; shift
  if "$@"; then echo "smoke: ok   $what"; else echo "smoke: FAIL $what" >&2; fail=1; fi
}
html=$(curl -fsS "http://127.0.0.1:$ui/")
check "index.html is the React app" grep -q '<div id="root">' <<<"$html"
js=$(grep -o 'src="[^"]*static/js/main[^"]*\.js"' <<<"$html" | head -1 | sed 's/^src="\.\{0,1\}\///; s/"$//' || true)
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ui/$js")
check "main bundle /$js answers 200" [ "$code" = 200 ]
health=$(curl -fsS "http://127.0.0.1:$ui/apis/v1beta1/healthz")
echo "smoke: healthz: $health"
check "healthz proxies to ML_PIPELINE_SERVICE_HOST:PORT" python3 -c \
  'import json,sys; h=json.loads(sys.argv[1]); sys.exit(0 if h["frontendTagName"]=="2.14.3" and h["apiServerReady"] else 1)' "$health"
# A grpc-web call the way the browser's client makes it (mode=grpcweb: binary protobuf frames).
code=$(printf '\x00\x00\x00\x00\x00' | curl -s -o "$tmp/grpc.out" -w '%{http_code}' \
  -H 'Content-Type: application/grpc-web+proto' -H 'X-Grpc-Web: 1' --data-binary @- \
  "http://127.0.0.1:$ui/ml_metadata.MetadataStoreService/GetArtifactTypes")
check "/ml_metadata.* forwarded to METADATA_ENVOY_SERVICE_SERVICE_HOST:PORT" grep -q \
  '"path": "/ml_metadata.MetadataStoreService/GetArtifactTypes"' "$tmp/grpcweb.jsonl"
check "the grpc-web answer comes back (HTTP $code)" [ "$code" = 200 ]
echo "smoke: the grpc-web stand-in saw: $(cat "$tmp/grpcweb.jsonl" 2>/dev/null)"

profile=$tmp/chromium-profile
mkdir -p "$profile"
nice -n 19 timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --disable-quic \
  --user-data-dir="$profile" --window-size=1400,900 --virtual-time-budget=15000 \
  --screenshot="$out" "http://127.0.0.1:$ui/" >"$tmp/chromium.log" 2>&1 || true
check "Chromium screenshot $out" [ -s "$out" ]
echo "smoke: requests the page made (server log):"
docker logs "$name" 2>&1 | grep -E '^(GET|POST|Proxied|Metadata)' | sort | uniq -c | sort -rn | head -20 || true
exit $fail
