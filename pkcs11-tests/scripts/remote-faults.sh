#!/usr/bin/env bash
# The remote token when things go wrong, against the real service on 127.0.0.1: each fault gives the
# CK_RV that README.md documents within the configured time, and the service's signing records never
# hold a duplicate signature.
#  - a stalled service (SIGSTOP): CKR_DEVICE_ERROR after the retries' timeouts, not a hang;
#  - an answer lost after the service signed (a relay drops it): the retry, under the same idempotency
#    key, returns the first signature; the service signed once;
#  - a 503: retried, signed once;
#  - the service killed (SIGKILL) and restarted while C_Sign waits for an approval: the wait goes on and
#    the approved signature arrives;
#  - a 429 storm: 8 threads × 20 signatures through one token at a 120/minute key limit all complete,
#    honouring Retry-After; with a short wait, CKR_DEVICE_ERROR and "rate limit" on stderr;
#  - TLS: the right CA works, a wrong CA gives CKR_DEVICE_ERROR and names the TLS failure on stderr.
source "$(dirname "$0")/lib.sh"
source "$root/pkcs11-tests/scripts/service-lib.sh"
cd "$work"
printf 'firmware image' >data

check "service with keys" service_setup release-ec:ecdsa_p256 release-rsa:rsa2048
check "service started" service_start
remote_timeout_ms=1500
remote_config
ec_id=$(key_id release-ec)
ec_key=$(service_key release-ec)
rsa_id=$(key_id release-rsa)

# elapsed_under SECONDS CMD...: runs CMD (which must fail), then checks it took less than SECONDS.
stalled() {
  local before start end out
  before=$(signatures "$ec_key")
  kill -STOP "$server"
  start=$(date +%s%N)
  out=$(ruser --sign --id "$ec_id" -m ECDSA-SHA256 -i data -o stalled.sig 2>&1)
  end=$(date +%s%N)
  kill -CONT "$server"
  echo "$out"
  echo "$out" | grep -q CKR_DEVICE_ERROR || return 1
  echo "$out" | grep -q 'did not answer in time' || return 1
  # 3 tries × 1.5 s + 1 s of backoff, plus process start: well under 10 s.
  [ $(((end - start) / 1000000)) -lt 10000 ] || { echo "took $(((end - start) / 1000000)) ms"; return 1; }
  # The service, running again, works through the queued tries: one idempotency key, one signature.
  sleep 2
  [ "$(signatures "$ec_key")" -le $((before + 1)) ]
}
check "stalled service: CKR_DEVICE_ERROR within 3 timeouts, at most one signature made" stalled

# through_proxy MODE: signs through the fault relay; the signature verifies; the service signed once.
through_proxy() {
  local mode=$1 proxy_port before out
  proxy_port=$(free_port)
  python3 "$root/pkcs11-tests/scripts/fault-proxy.py" "$proxy_port" "$service_port" "$mode" >proxy.out 2>proxy.err &
  local proxy=$!
  for _ in $(seq 50); do grep -q ready proxy.out 2>/dev/null && break; sleep 0.1; done
  printf 'store_dir = "%s"\n[[remote]]\nslot = 10\nurl = "http://127.0.0.1:%s"\ntimeout_ms = 3000\n' "$work/store" "$proxy_port" >proxy.toml
  before=$(signatures "$ec_key")
  out=$(CRYPTERA_PKCS11_CONFIG=$work/proxy.toml ruser --sign --id "$ec_id" -m ECDSA-SHA256 -i data -o "$mode.sig" 2>&1)
  local rv=$?
  kill "$proxy"; wait "$proxy" 2>/dev/null
  echo "$out"; cat proxy.err
  [ $rv -eq 0 ] || return 1
  grep -q "fault:" proxy.err || { echo "no fault was injected"; return 1; }
  ruser --verify --id "$ec_id" -m ECDSA-SHA256 -i data --signature-file "$mode.sig" 2>&1 | grep -q 'Signature is valid' || return 1
  [ "$(signatures "$ec_key")" -eq $((before + 1)) ] || { echo "signatures: $before -> $(signatures "$ec_key")"; return 1; }
}
check "an answer lost after the service signed: the retry returns that signature, signed once" through_proxy drop-response
check "a 503: retried, the signature verifies, signed once" through_proxy answer-503

# Killed while C_Sign waits for an approval, restarted: the approval still completes the signature.
killed_while_waiting() {
  local secret request signer gated_id gated_key
  "$backend" key create --org acme --label release-gated --algorithm ecdsa_p256 --environment development \
    --approvals-required 1 >/dev/null || return 1
  gated_id=$(key_id release-gated); gated_key=$(service_key release-gated)
  secret=$(enrol_approver alice) || return 1
  ruser --sign --id "$gated_id" -m ECDSA-SHA256 -i data -o gated.sig >gated.out 2>&1 &
  signer=$!
  request=$(pending_request) || { echo "no pending request"; return 1; }
  kill -KILL "$server"; wait "$server" 2>/dev/null; server=""
  sleep 3
  service_start || return 1
  printf '%s\n%s\n' "$approver_password" "$(totp "$secret" 1)" |
    "$backend" approve --org acme --username alice --request "$request" || return 1
  wait "$signer" || { cat gated.out; return 1; }
  ruser --verify --id "$gated_id" -m ECDSA-SHA256 -i data --signature-file gated.sig 2>&1 | grep -q 'Signature is valid' || return 1
  [ "$(signatures "$gated_key")" -eq 1 ]
}
check "service killed and restarted while C_Sign waits for approval: the signature arrives" killed_while_waiting

# A 429 storm: a key limited to 120 signatures a minute, 8 threads × 20 signatures through one token.
storm() {
  local admin_key before
  admin_key=$(api /v1/keys -H "authorization: Bearer $token" -d \
    '{"label":"release-limited","algorithm":"ecdsa_p256","policy":{"rate_limit_per_minute":120}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') || return 1
  /usr/bin/python3 - "$module" "$token" <<'PY' || return 1
import sys, threading, time
import PyKCS11
module, token = sys.argv[1:3]
lib = PyKCS11.PyKCS11Lib()
lib.load(module)
login = lib.openSession(10)
login.login(token)
failures, done = [], []
def signer():
    session = lib.openSession(10)
    key = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_LABEL, "release-limited")])[0]
    for i in range(20):
        try:
            session.sign(key, b"build %d" % i, PyKCS11.Mechanism(PyKCS11.CKM_ECDSA_SHA256))
            done.append(1)
        except PyKCS11.PyKCS11Error as e:
            failures.append(str(e))
start = time.time()
threads = [threading.Thread(target=signer) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("%d signatures in %.1f s, failures: %s" % (len(done), time.time() - start, failures[:3]))
sys.exit(0 if len(done) == 160 and not failures else 1)
PY
  # The storm did hit the limit: the service answered 429 to signing requests.
  curl -sf "http://127.0.0.1:$service_port/metrics" | grep 'cryptera_requests_total{method="POST",route="/v1/keys/{id}/sign",status="429"}' || {
    echo "no 429 answered"; return 1; }
  [ "$(signatures "$admin_key")" -eq 160 ] || { echo "service signatures: $(signatures "$admin_key")"; return 1; }
}
check "429 storm: 8 threads × 20 signatures at a 120/minute limit all complete, each signed once" storm

short_wait() {
  local id out rv
  id=$(key_id release-limited)
  # The bucket is empty after the storm; a 2-second budget is shorter than its Retry-After.
  for _ in 1 2 3; do
    printf 'store_dir = "%s"\n[[remote]]\nslot = 10\nurl = "http://127.0.0.1:%s"\napproval_wait_s = 0\n' "$work/store" "$service_port" >short.toml
    out=$(CRYPTERA_PKCS11_CONFIG=$work/short.toml ruser --sign --id "$id" -m ECDSA-SHA256 -i data -o short.sig 2>&1); rv=$?
    [ $rv -ne 0 ] && break
  done
  echo "$out"
  echo "$out" | grep -q CKR_DEVICE_ERROR && echo "$out" | grep -q 'rate limit'
}
check "429 beyond the wait: CKR_DEVICE_ERROR, and the reason on stderr" short_wait
service_stop

# TLS: the service with the test CA's localhost certificate.
scheme=https
fixtures=$root/backend/tests/fixtures
check "service over TLS" service_start --tls-cert "$fixtures/localhost-test-cert.pem" --tls-key "$fixtures/localhost-test-key.pem"
tls_right_ca() {
  remote_config "ca_file = \"$fixtures/test-ca-cert.pem\""
  ruser --sign --id "$rsa_id" -m SHA256-RSA-PKCS -i data -o tls.sig &&
    ruser --verify --id "$rsa_id" -m SHA256-RSA-PKCS -i data --signature-file tls.sig 2>&1 | grep -q 'Signature is valid'
}
check "TLS with the service's CA: login and signing work" tls_right_ca
tls_wrong_ca() {
  local out
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -subj "/CN=Another CA" \
    -days 2 -out other-ca.pem 2>/dev/null || return 1
  remote_config "ca_file = \"$work/other-ca.pem\""
  out=$(ruser -O 2>&1)
  echo "$out"
  echo "$out" | grep -q CKR_DEVICE_ERROR && echo "$out" | grep -qi 'TLS.*certificate\|certificate.*TLS\|TLS with'
}
check "TLS with a wrong CA: CKR_DEVICE_ERROR and the TLS failure on stderr" tls_wrong_ca
done_checks
