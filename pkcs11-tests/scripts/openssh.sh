#!/usr/bin/env bash
# OpenSSH with token keys, as docs/CLIENTS.md describes it: ssh-keygen -D prints the token's public
# keys; an sshd of this script's own (127.0.0.1, a free high port, host key and config in the temp dir,
# run as the current user) accepts them from authorized_keys; ssh logs in with the module (-I), and
# ssh-add -s loads the token's keys into an ssh-agent through which ssh logs in again. The PIN comes
# from an askpass program, as it would from a desktop prompt.
source "$(dirname "$0")/lib.sh"
cd "$work"
user() { tool --token-label ssh --login --pin 1234 "$@"; }
sshd_bin=$(command -v sshd || echo /usr/sbin/sshd)
me=$(id -un)

check "token for OpenSSH" new_token ssh
check "keygen RSA-3072" user --keypairgen --key-type rsa:3072 --id 01 --label ssh-rsa
check "keygen EC P-256" user --keypairgen --key-type EC:prime256v1 --id 02 --label ssh-ec256
check "keygen EC P-384" user --keypairgen --key-type EC:secp384r1 --id 03 --label ssh-ec384
check "ssh-keygen -D lists the three keys" bash -c "
  ssh-keygen -D '$module' | tee authorized_keys &&
  [ \$(grep -c '^ssh-rsa ' authorized_keys) -eq 1 ] &&
  [ \$(grep -c '^ecdsa-sha2-nistp256 ' authorized_keys) -eq 1 ] &&
  [ \$(grep -c '^ecdsa-sha2-nistp384 ' authorized_keys) -eq 1 ]"
check "ssh-keygen -D keys match the token's public keys" bash -c "
  pkcs11-tool --module '$module' --token-label ssh --read-object --type pubkey --id 02 -o ec.der &&
  openssl pkey -pubin -inform DER -in ec.der -out ec.pem && ssh-keygen -i -m PKCS8 -f ec.pem | cut -d' ' -f1,2 >ec.ssh &&
  grep -qF \"\$(cat ec.ssh)\" authorized_keys"

# askpass: OpenSSH asks for the PIN through it (SSH_ASKPASS_REQUIRE=force: even without a display).
printf '#!/bin/sh\necho 1234\n' >askpass && chmod 700 askpass
export SSH_ASKPASS=$work/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=${DISPLAY:-:0}

# sshd: its own host key and config; only 127.0.0.1. As root it needs its privilege separation
# directory (openssh-server's sshd user comes with the package).
[ "$(id -u)" -ne 0 ] || mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f ssh_host_ed25519_key
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >sshd_config <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $work/ssh_host_ed25519_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowUsers $me
LogLevel VERBOSE
CONF
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 ssh_host_ed25519_key.pub)" >known_hosts
"$sshd_bin" -D -e -f "$work/sshd_config" 2>sshd.log &
sshd_pid=$!
on_exit "kill $sshd_pid; wait $sshd_pid"
listening() { for _ in $(seq 50); do ss -ltn "sport = :$port" | grep -q "127.0.0.1:$port" && return 0; sleep 0.1; done; return 1; }
check "sshd listens on 127.0.0.1:$port only" bash -c "$(declare -f listening); port=$port; listening && ! ss -ltn \"sport = :$port\" | grep -v '127.0.0.1:$port' | grep -q LISTEN"
# Not IdentitiesOnly=yes: OpenSSH 9.2 then drops the keys of -I/PKCS11Provider (IdentityFile=none
# keeps key files out instead). Not BatchMode=yes either: it skips tokens that need a PIN.
ssh_to() {
  ssh -F /dev/null -p "$port" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes \
    -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o ConnectTimeout=10 "$@" </dev/null
}
logged_in() { ssh_to "$@" "$me@127.0.0.1" 'echo logged-in-as-$(id -un)' | tee login.out && grep -qx "logged-in-as-$me" login.out; }

# authorize FILE: sshd accepts the keys in FILE from now on (SIGHUP re-executes it with the new config).
authorize() {
  sed -i "s|^AuthorizedKeysFile .*|AuthorizedKeysFile $work/$1|" sshd_config && kill -HUP "$sshd_pid" && sleep 0.3 && listening
}
check "ssh -I MODULE logs in with a token key" logged_in -o IdentityFile=none -o IdentityAgent=none -I "$module"
# One key at a time: authorized_keys holds that key alone, so the login proves it signed.
for type in ssh-rsa ecdsa-sha2-nistp256 ecdsa-sha2-nistp384; do
  grep "^$type " authorized_keys >"authorized_keys.$type"
  check "ssh -I MODULE logs in with the $type key alone" \
    bash -c "$(declare -f authorize listening logged_in ssh_to); work=$work port=$port sshd_pid=$sshd_pid me=$me module=$module
      authorize authorized_keys.$type && logged_in -o IdentityFile=none -o IdentityAgent=none -I \"\$module\""
done
check "sshd logged the token keys' logins" bash -c "[ \$(grep -c 'Accepted publickey for' sshd.log) -ge 4 ]"
ssh-keygen -q -t ed25519 -N '' -f other_key
check "ssh -I MODULE is refused when no token key is authorized" \
  bash -c "$(declare -f authorize listening logged_in ssh_to); work=$work port=$port sshd_pid=$sshd_pid me=$me module=$module
    cp other_key.pub authorized_keys.other && authorize authorized_keys.other && ! logged_in -o IdentityFile=none -o IdentityAgent=none -I \"\$module\""
authorize authorized_keys

# ssh-agent: its own socket in the temp dir. It loads PKCS#11 modules only from an allow-list (default
# /usr/lib*/* and /usr/local/lib*/*): -P allows this module wherever it was built.
eval "$(ssh-agent -a "$work/agent.sock" -P "$module" -s)" >/dev/null
on_exit "kill $SSH_AGENT_PID"
check "ssh-add -s loads the token's keys into ssh-agent" ssh-add -s "$module"
check "ssh-add -l lists the three keys" bash -c "ssh-add -l | tee agent.txt && [ \$(wc -l <agent.txt) -eq 3 ] && grep -q '(RSA)' agent.txt && grep -q '(ECDSA)' agent.txt"
check "ssh-add -L prints the same keys as ssh-keygen -D" bash -c "
  cmp <(ssh-add -L | cut -d' ' -f1,2 | sort) <(cut -d' ' -f1,2 authorized_keys | sort)"
check "ssh logs in through the agent" logged_in -o IdentityFile=none -o IdentityAgent="$work/agent.sock"
check "ssh-add -e removes the token's keys" bash -c "ssh-add -e '$module' && ! ssh-add -l"
check "no login through the emptied agent" bash -c "$(declare -f ssh_to logged_in); port=$port; work=$work; me=$me; ! logged_in -o IdentityFile=none -o IdentityAgent='$work/agent.sock'"
check "ssh-add -s with a wrong PIN loads nothing" bash -c "
  printf '#!/bin/sh\necho 9999\n' >askpass.wrong && chmod 700 askpass.wrong &&
  ! SSH_ASKPASS=$work/askpass.wrong ssh-add -s '$module' && ! ssh-add -l"

# OpenSSH 9.2 has no PKCS#11 Ed25519: it skips such a key and still offers the others.
check "an Ed25519 key on the token is skipped, the others stay listed" bash -c "
  pkcs11-tool --module '$module' --token-label ssh --login --pin 1234 --keypairgen --key-type EC:edwards25519 --id 04 --label ssh-ed &&
  ssh-keygen -D '$module' >with-ed.pub && cmp <(sort with-ed.pub) <(sort authorized_keys)"

# The remote token: keys in the Cryptera service on 127.0.0.1, the access token from token_env (the
# slot then asks for no PIN). The local tokens are set aside: this config has its own empty store.
source "$root/pkcs11-tests/scripts/service-lib.sh"
check "service with a remote P-256 key" service_setup release-ssh:ecdsa_p256
check "service started" service_start
remote_config 'token_env = "CRYPTERA_TEST_TOKEN"'
export CRYPTERA_TEST_TOKEN=$token
check "ssh-keygen -D lists the remote key" bash -c "ssh-keygen -D '$module' | tee remote.pub && [ \$(grep -c '^ecdsa-sha2-nistp256 ' remote.pub) -eq 1 ]"
check "ssh -I MODULE logs in with the remote key alone (signed in the service)" \
  bash -c "$(declare -f authorize listening logged_in ssh_to); work=$work port=$port sshd_pid=$sshd_pid me=$me module=$module
    authorize remote.pub && logged_in -o IdentityFile=none -o IdentityAgent=none -I \"\$module\""
check "the service recorded the login's signature" bash -c "
  curl -sf 'http://127.0.0.1:$service_port/v1/signing-requests?status=completed' -H 'authorization: Bearer $token' |
  grep -q '\"program\":\"/usr/bin/ssh\"'"

done_checks
