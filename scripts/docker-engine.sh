#!/usr/bin/env bash
# Makes sure a Docker engine answers. If none does, installs Debian's (docker.io) and starts
# dockerd with no bridge and no iptables rules: containers get only `--network host` (every
# server binds 127.0.0.1) or `--network none`, so no other address is ever used.
# The engine is left running, like a system service; its log is /var/log/symptom-dx-dockerd.log.
set -euo pipefail
docker info >/dev/null 2>&1 && exit 0
bash "$(dirname "$0")/apt-deps.sh" docker.io
if [ "$(id -u)" -ne 0 ]; then
  echo "docker-engine: no Docker engine answers, and starting one needs root" >&2
  exit 1
fi
echo "docker-engine: starting dockerd (--bridge=none --iptables=false)"
nohup dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
  >/var/log/symptom-dx-dockerd.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "docker-engine: dockerd did not answer within 30 s; see /var/log/symptom-dx-dockerd.log" >&2
tail -5 /var/log/symptom-dx-dockerd.log >&2
exit 1
