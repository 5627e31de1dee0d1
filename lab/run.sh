#!/usr/bin/env bash
# gpu-nids traffic lab: real servers, real benign clients and real attack
# tools in Linux network namespaces on a private bridge; tcpdump captures;
# labels.csv with per-attack time windows. See lab/README.md.
#
#   sudo lab/run.sh --quick --seed 7 --out assets/demo     # about two minutes
#   sudo lab/run.sh --minutes 10 --seed 1                  # longer run
#
# Safety: every address lives only inside namespaces this script creates
# (the bridge sits in its own namespace, no address or route touches the root
# namespace, no namespace has a default route); every loop is bounded in
# count and in time; a trap tears everything down on exit, error, Ctrl-C or
# TERM.
set -Eeuo pipefail

PROG=lab/run.sh
SUBNET_PREFIX=10.77.0        # the lab's /24; exists only inside the namespaces
NSP=nidslab                  # namespace name prefix
HUB=$NSP-hub                 # namespace holding the bridge (and tcpdump)

usage() {
    cat <<'EOF'
Usage: lab/run.sh [--quick | --minutes N] [--seed S] [--out DIR]
                  [--snaplen BYTES] [--no-install] [--keep-tmp]

  --quick          about two minutes in all: 45 s benign-only training capture,
                   75 s test capture with eight attack windows (the assets/demo set)
  --minutes N      total capture time in minutes (2..120, default 10): 40 % benign
                   training capture, 60 % (at least 75 s) test capture with the
                   attack windows; --quick is --minutes 2
  --seed S         seed for every random choice (client actions, pauses, attack
                   start jitter); integer, default 1
  --out DIR        output directory (default lab/out/run-<UTC time>); gets
                   train-benign.pcap, test-attacks.pcap, labels.csv, NOTE.md
  --snaplen BYTES  tcpdump snap length (default 96: Ethernet + IP + TCP headers
                   with options, and the first 80 bytes of every frame)
  --no-install     do not run apt-get (fail if a tool is missing)
  --keep-tmp       keep the scratch directory (server configs and logs)

Run as root on Debian (12 tested). Nothing leaves the lab namespaces.
EOF
}

# ---------------------------------------------------------------- options
QUICK=0; MINUTES=10; SEED=1; OUT=""; SNAP=96; INSTALL=1; KEEP_TMP=0
ARGS_ORIG="$*"
while (($#)); do
    case "$1" in
        --quick) QUICK=1 ;;
        --minutes) MINUTES=${2:?}; shift ;;
        --seed) SEED=${2:?}; shift ;;
        --out) OUT=${2:?}; shift ;;
        --snaplen) SNAP=${2:?}; shift ;;
        --no-install) INSTALL=0 ;;
        --keep-tmp) KEEP_TMP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
[[ $MINUTES =~ ^[0-9]+$ ]] && ((MINUTES >= 2 && MINUTES <= 120)) || { echo "--minutes must be 2..120" >&2; exit 2; }
[[ $SEED =~ ^[0-9]+$ ]] && ((SEED < 2**31)) || { echo "--seed must be a non-negative integer" >&2; exit 2; }
[[ $SNAP =~ ^[0-9]+$ ]] && ((SNAP >= 96 && SNAP <= 65535)) || { echo "--snaplen must be 96..65535" >&2; exit 2; }
((EUID == 0)) || { echo "run as root (network namespaces, raw sockets, apt-get)" >&2; exit 1; }

# Test capture: 60 % of the time but at least 75 s (eight attack slots of
# about 8 s); --quick is --minutes 2 (45 s + 75 s).
((QUICK)) && MINUTES=2
TEST_S=$((MINUTES * 60 * 3 / 5)); ((TEST_S < 75)) && TEST_S=75
TRAIN_S=$((MINUTES * 60 - TEST_S))
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
[[ -n $OUT ]] || OUT=$ROOT_DIR/lab/out/run-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
TRAIN_PCAP=train-benign.pcap
TEST_PCAP=test-attacks.pcap

now_ms() { date +%s%3N; }
T_BEGIN=$(now_ms)
log() { printf '[lab %6.1fs] %s\n' "$(( $(now_ms) - T_BEGIN ))e-3" "$*" >&2; }
# Interruptible sleep (traps run at once, not after the sleep).
nap() { sleep "$1" & wait $! || true; }
sleep_until_ms() {
    local d=$(($1 - $(now_ms)))
    ((d > 0)) && nap "$((d / 1000)).$(printf %03d $((d % 1000)))"
    return 0
}
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }   # ms -> "s.mmm"

# ---------------------------------------------------------------- hosts
# name        last-octet  role
HOSTS=(
    "web    10" "ssh    11" "ftp    12" "dns    13"
    "c1     21" "c2     22" "c3     23" "c4     24" "c5     25" "c6     26"
    "a-synscan  66" "a-vscan    67" "a-synflood 68" "a-slowloris 69"
    "a-sshbrute 70" "a-ftpbrute 71" "a-httpflood 72" "a-dnsflood 73"
)
ip_of() { local h; for h in "${HOSTS[@]}"; do set -- $h; [[ $1 == "$NAME_Q" ]] && { echo "$SUBNET_PREFIX.$2"; return; }; done; return 1; }
host_ip() { NAME_Q=$1 ip_of; }
WEB=$(host_ip web); SSH=$(host_ip ssh); FTP=$(host_ip ftp); DNS=$(host_ip dns)
CLIENTS=(c1 c2 c3 c4 c5 c6)

# ---------------------------------------------------------------- teardown
TMP=""; CLEANED=0; CREATED_USER=0; STATUS=0
cleanup() {
    STATUS=${STATUS:-$?}
    ((CLEANED)) && return; CLEANED=1
    set +e
    trap - INT TERM ERR
    log "teardown"
    local ns pids i
    # Stop every process running in a lab namespace (all of them were
    # started by this script), politely first, bounded wait, then KILL.
    for ns in $(ip netns list 2>/dev/null | awk -v p="^$NSP-" '$1 ~ p {print $1}'); do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [[ -n $pids ]] && kill -TERM $pids 2>/dev/null
    done
    for i in $(seq 1 30); do
        pids=""
        for ns in $(ip netns list 2>/dev/null | awk -v p="^$NSP-" '$1 ~ p {print $1}'); do
            pids+=" $(ip netns pids "$ns" 2>/dev/null)"
        done
        [[ -z ${pids// /} ]] && break
        ((i == 30)) && kill -KILL $pids 2>/dev/null
        sleep 0.1
    done
    # Deleting a namespace deletes its veth ends and the bridge.
    for ns in $(ip netns list 2>/dev/null | awk -v p="^$NSP-" '$1 ~ p {print $1}'); do
        ip netns del "$ns" 2>/dev/null
    done
    if ((CREATED_USER)); then userdel nidslab 2>/dev/null; fi
    if [[ -n $TMP && -d $TMP ]]; then
        if ((KEEP_TMP)); then log "scratch kept in $TMP"; else rm -rf "$TMP"; fi
    fi
    log "teardown done (namespaces left: $(ip netns list 2>/dev/null | grep -c "^$NSP-" || true))"
}
trap 'STATUS=$?; cleanup; exit $STATUS' EXIT
trap 'log "interrupted"; STATUS=130; exit 130' INT
trap 'log "terminated"; STATUS=143; exit 143' TERM
trap 'log "error at line $LINENO: $BASH_COMMAND"' ERR

# ---------------------------------------------------------------- preflight
if ip netns list 2>/dev/null | grep -q "^$NSP-"; then
    echo "namespaces named $NSP-* already exist (another lab run?):" >&2
    ip netns list | grep "^$NSP-" >&2
    echo "delete them with: ip netns del NAME   (or wait for that run to end)" >&2
    CLEANED=1; exit 1
fi
if ip -4 addr show | grep -q "inet $SUBNET_PREFIX\."; then
    echo "$SUBNET_PREFIX.0/24 is in use in the root namespace; refusing to run" >&2
    CLEANED=1; exit 1
fi

# ---------------------------------------------------------------- install
PKGS=(iproute2 tcpdump procps coreutils nginx-light openssh-server openssh-client
      vsftpd dnsmasq-base curl wget bind9-dnsutils iputils-ping
      nmap hping3 slowhttptest hydra apache2-utils dnsperf)
need_install() {
    local p
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 0
    done
    return 1
}
if need_install; then
    ((INSTALL)) || { echo "missing packages and --no-install given: ${PKGS[*]}" >&2; exit 1; }
    log "installing packages (apt-get)"
    # Keep Debian's maintainer scripts from starting the daemons in the root
    # namespace: policy-rc.d exit 101 = "do not start".
    POLICY_ADDED=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; POLICY_ADDED=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 apt-get update -qq
    timeout 1800 apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
    ((POLICY_ADDED)) && rm -f /usr/sbin/policy-rc.d
fi
T_INSTALLED=$(now_ms)

# ---------------------------------------------------------------- scratch
TMP=$(mktemp -d /tmp/nidslab.XXXXXX)
chmod 755 "$TMP"     # nginx workers (nobody) read the site from here
log "scratch $TMP, output $OUT, seed $SEED, train ${TRAIN_S}s, test ${TEST_S}s"
RANDOM=$SEED

# Web site: an index linking pages, a stylesheet, images, downloadable files.
mkdir -p "$TMP/www/img" "$TMP/www/files" "$TMP/www/docs"
{
    echo '<!doctype html><html><head><title>Lab intranet</title><link rel="stylesheet" href="/style.css"></head><body>'
    echo '<h1>Lab intranet</h1><ul>'
    for i in $(seq 1 20); do echo "<li><a href=\"/docs/page$i.html\">Page $i</a></li>"; done
    echo '</ul><img src="/img/logo.png"><img src="/img/banner.jpg"></body></html>'
} > "$TMP/www/index.html"
printf 'body { font-family: sans-serif; margin: 2em; }\nh1 { color: #246; }\n' > "$TMP/www/style.css"
for i in $(seq 1 20); do
    { echo "<!doctype html><html><head><title>Page $i</title></head><body><h1>Page $i</h1>"
      for j in $(seq 1 $((5 + RANDOM % 60))); do echo "<p>Paragraph $j of page $i: lorem ipsum dolor sit amet.</p>"; done
      echo '<a href="/">home</a></body></html>'; } > "$TMP/www/docs/page$i.html"
done
head -c 6000 /dev/urandom > "$TMP/www/img/logo.png"
head -c 40000 /dev/urandom > "$TMP/www/img/banner.jpg"
head -c 262144 /dev/urandom > "$TMP/www/files/report-256k.bin"
head -c 1048576 /dev/urandom > "$TMP/www/files/backup-1m.bin"
head -c 20000 /dev/urandom > "$TMP/www/files/notes-20k.txt"
chmod -R a+rX "$TMP/www"

mkdir -p "$TMP/nginx-tmp"
cat > "$TMP/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path $TMP/nginx-tmp/body;
    proxy_temp_path $TMP/nginx-tmp/proxy;
    fastcgi_temp_path $TMP/nginx-tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx-tmp/uwsgi;
    scgi_temp_path $TMP/nginx-tmp/scgi;
    keepalive_timeout 15;
    server {
        listen $WEB:80;
        root $TMP/www;
        server_name www.lab.internal;
    }
}
EOF

# SSH: a dedicated unprivileged account for benign sessions (key login) and
# as the brute-force target (it has no usable password).
if ! id nidslab >/dev/null 2>&1; then
    useradd -M -d "$TMP/home" -s /bin/bash nidslab; CREATED_USER=1
    usermod -p '*' nidslab    # not locked ('!'), no password matches
fi
mkdir -p "$TMP/ssh" "$TMP/home"; chown nidslab "$TMP/home"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/host_ed25519" -C lab-host
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/client" -C lab-client
cp "$TMP/ssh/client.pub" "$TMP/ssh/authorized_keys"; chmod 644 "$TMP/ssh/authorized_keys"
mkdir -p /run/sshd
cat > "$TMP/ssh/sshd_config" <<EOF
ListenAddress $SSH
Port 22
HostKey $TMP/ssh/host_ed25519
PidFile $TMP/ssh/sshd.pid
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers nidslab
AuthorizedKeysFile $TMP/ssh/authorized_keys
StrictModes no
MaxStartups 200:30:400
MaxAuthTries 6
LoginGraceTime 20
PrintMotd no
LogLevel ERROR
Subsystem sftp internal-sftp
EOF

# FTP: anonymous downloads for benign clients; local logins (PAM) are what
# the brute forcer tries.
mkdir -p "$TMP/ftp/pub" "$TMP/vsftpd-empty"
for f in readme.txt changelog.txt; do head -c $((2000 + RANDOM % 8000)) /dev/urandom | base64 > "$TMP/ftp/pub/$f"; done
head -c 131072 /dev/urandom > "$TMP/ftp/pub/firmware-128k.bin"
head -c 524288 /dev/urandom > "$TMP/ftp/pub/dataset-512k.bin"
chmod -R a+rX "$TMP/ftp"; chmod 755 "$TMP/vsftpd-empty"
cat > "$TMP/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=$FTP
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$TMP/ftp
ftp_username=nobody
local_enable=YES
write_enable=NO
pasv_enable=YES
pasv_min_port=30000
pasv_max_port=30200
pasv_address=$FTP
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
secure_chroot_dir=$TMP/vsftpd-empty
pam_service_name=vsftpd
xferlog_enable=NO
max_clients=300
max_per_ip=100
EOF

# DNS: dnsmasq authoritative for lab.internal only; --no-resolv and no
# upstream server, so it never forwards anything.
mkdir -p "$TMP/dns"
NAMES=(www mail intranet wiki git files db01 db02 backup printer vpn ldap
       build ci monitor grafana proxy cache chat calendar hr finance)
{
    echo "$WEB www.lab.internal"; echo "$SSH ssh.lab.internal"
    echo "$FTP ftp.lab.internal"; echo "$DNS ns.lab.internal"
    i=100
    for n in "${NAMES[@]}"; do echo "$SUBNET_PREFIX.$i $n.lab.internal"; i=$((i + 1)); done
} > "$TMP/dns/hosts"
for i in $(seq 1 400); do echo "${NAMES[RANDOM % ${#NAMES[@]}]}.lab.internal A"; done > "$TMP/dns/queries.txt"

# Brute-force wordlist (50 common passwords; none is valid).
printf '%s\n' 123456 password 12345678 qwerty 123456789 12345 1234 111111 1234567 dragon \
    123123 baseball abc123 football monkey letmein 696969 shadow master 666666 \
    qwertyuiop 123321 mustang 1234567890 michael 654321 pussy superman 1qaz2wsx 7777777 \
    fuckyou 121212 000000 qazwsx 123qwe killer trustno1 jordan jennifer zxcvbnm \
    asdfgh hunter buster soccer harley batman andrew tigger sunshine iloveyou > "$TMP/passwords.txt"

# ---------------------------------------------------------------- network
log "building namespaces on $SUBNET_PREFIX.0/24"
ip netns add "$HUB"
ip netns exec "$HUB" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$HUB" link set lo up
ip -n "$HUB" link add br0 type bridge stp_state 0 forward_delay 0
ip -n "$HUB" link set br0 up          # no address: the bridge only switches
for h in "${HOSTS[@]}"; do
    set -- $h; name=$1; oct=$2; ns=$NSP-$name
    ip netns add "$ns"
    # IPv6 off so every frame a host sends carries its one IPv4 address
    # (exact labels; no ND/MLD noise).
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
    # veth created inside the hub namespace, peer moved straight into the
    # host namespace: the root namespace never sees either end.
    ip -n "$HUB" link add "v-$name" type veth peer name eth0 netns "$ns"
    ip -n "$HUB" link set "v-$name" master br0 up
    ip -n "$ns" link set eth0 address "02:77:00:00:00:$(printf %02x "$oct")"
    ip -n "$ns" addr add "$SUBNET_PREFIX.$oct/24" dev eth0
    ip -n "$ns" link set eth0 up
    # Only the connected /24 route exists; assert there is no default route.
    if ip -n "$ns" route show default | grep -q .; then echo "unexpected default route in $ns" >&2; exit 1; fi
done
# Wait (bounded) for the bridge ports to forward.
for i in $(seq 1 50); do
    ip netns exec "$NSP-c1" ping -c1 -W1 -q "$WEB" >/dev/null 2>&1 && break
    ((i == 50)) && { echo "bridge did not come up" >&2; exit 1; }
    sleep 0.1
done

# ---------------------------------------------------------------- servers
log "starting servers"
ip netns exec "$NSP-web" nginx -c "$TMP/nginx.conf" -p "$TMP" >"$TMP/nginx.out" 2>&1 &
ip netns exec "$NSP-ssh" /usr/sbin/sshd -D -e -f "$TMP/ssh/sshd_config" >"$TMP/sshd.out" 2>&1 &
ip netns exec "$NSP-ftp" vsftpd "$TMP/vsftpd.conf" >"$TMP/vsftpd.out" 2>&1 &
ip netns exec "$NSP-dns" dnsmasq -k --conf-file=/dev/null --listen-address="$DNS" --bind-interfaces \
    --no-resolv --no-hosts --addn-hosts="$TMP/dns/hosts" --local=/lab.internal/ --domain-needed \
    --pid-file="$TMP/dnsmasq.pid" --cache-size=1000 --dns-forward-max=1000 --log-facility=- \
    >"$TMP/dnsmasq.out" 2>&1 &
wait_port() {   # ns ip port: bounded wait until a TCP port accepts
    local i
    for i in $(seq 1 100); do
        ip netns exec "$NSP-c1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server $1 ($2:$3) did not start; see $TMP/*.out" >&2; KEEP_TMP=1; return 1
}
wait_port web "$WEB" 80; wait_port ssh "$SSH" 22; wait_port ftp "$FTP" 21; wait_port dns "$DNS" 53
ip netns exec "$NSP-c1" dig +short +time=1 +tries=3 @"$DNS" www.lab.internal | grep -q "$WEB" \
    || { echo "dnsmasq does not answer" >&2; KEEP_TMP=1; exit 1; }

# ---------------------------------------------------------------- capture
TCPDUMP_PID=""
start_capture() {   # file -> sets TCPDUMP_PID once tcpdump is listening
    local f=$1 err=$TMP/tcpdump-$(basename "$1").err i
    ip netns exec "$HUB" tcpdump -i br0 -n -s "$SNAP" -U -Z root -w "$f" 2>"$err" &
    TCPDUMP_PID=$!
    for i in $(seq 1 50); do grep -q 'listening on' "$err" 2>/dev/null && return 0; sleep 0.1; done
    echo "tcpdump did not start: $(cat "$err")" >&2; exit 1
}
stop_capture() {    # pid
    local i
    kill -INT "$1" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------- benign clients
# One bounded loop per client namespace: random actions against the four
# servers with random pauses, until its deadline (epoch s) or MAX_ACTIONS.
MAX_ACTIONS=100000
client_loop() {
    local id=$1 deadline=$3 n=0 r k i urls names pause
    RANDOM=$2
    local sshopt=(-q -i "$TMP/ssh/client" -o BatchMode=yes -o StrictHostKeyChecking=no
                  -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR)
    local cmds=("uptime" "uname -a; id" "ls -la /etc | head -40" "df -h; free -m"
                "cat /etc/os-release" "ps aux | head -30" "date; hostname; who"
                "ls /usr/bin | wc -l; ls /usr/share | head -50" "env | sort | head -20")
    local ftpfiles=(readme.txt changelog.txt firmware-128k.bin "")
    while ((n < MAX_ACTIONS)) && (($(date +%s) < deadline)); do
        n=$((n + 1)); r=$((RANDOM % 100))
        if ((r < 30)); then          # browse: 1-6 pages over one keep-alive connection
            urls=("http://$WEB/" "http://$WEB/style.css")
            k=$((RANDOM % 5)); for ((i = 0; i < k; i++)); do urls+=("http://$WEB/docs/page$((1 + RANDOM % 20)).html"); done
            ((RANDOM % 3 == 0)) && urls+=("http://$WEB/img/logo.png" "http://$WEB/img/banner.jpg")
            timeout 20 curl -s -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
                -A "Mozilla/5.0 (X11; Linux x86_64) lab-client/$id" "${urls[@]}" || true
        elif ((r < 38)); then        # wget: one page and everything it links
            timeout 30 wget -q -r -l1 -np --delete-after -P "$TMP/wget-$id" "http://$WEB/docs/page$((1 + RANDOM % 20)).html" || true
        elif ((r < 56)); then        # DNS lookups (1-4 names per dig)
            names=(); k=$((1 + RANDOM % 4))
            for ((i = 0; i < k; i++)); do names+=("${NAMES[RANDOM % ${#NAMES[@]}]}.lab.internal"); done
            ((RANDOM % 6 == 0)) && names+=("nosuchhost$RANDOM.lab.internal")
            timeout 10 dig +time=2 +tries=1 @"$DNS" "${names[@]}" >/dev/null 2>&1 || true
        elif ((r < 70)); then        # ssh session running a command or two
            timeout 30 ssh "${sshopt[@]}" nidslab@"$SSH" "${cmds[RANDOM % ${#cmds[@]}]}" >/dev/null 2>&1 || true
        elif ((r < 84)); then        # ftp: list or download (anonymous, passive)
            timeout 30 curl -s -o /dev/null "ftp://$FTP/pub/${ftpfiles[RANDOM % ${#ftpfiles[@]}]}" || true
        elif ((r < 89)); then        # bulk HTTP download, rate limited
            timeout 30 curl -s -o /dev/null --limit-rate 2M \
                "http://$WEB/files/$(((RANDOM % 2)) && echo report-256k.bin || echo notes-20k.txt)" || true
        elif ((r < 92)); then        # bulk: scp-like ssh copy out of a file
            timeout 30 ssh "${sshopt[@]}" nidslab@"$SSH" "head -c $((20000 + RANDOM % 100000)) /usr/bin/ssh" >/dev/null 2>&1 || true
        elif ((r < 95)); then        # ping the servers
            timeout 5 ping -q -c $((1 + RANDOM % 3)) -i 0.3 "$( case $((RANDOM % 4)) in 0) echo $WEB;; 1) echo $SSH;; 2) echo $FTP;; *) echo $DNS;; esac )" >/dev/null 2>&1 || true
        else                         # HEAD / conditional requests
            timeout 10 curl -s -o /dev/null -I "http://$WEB/docs/page$((1 + RANDOM % 20)).html" || true
        fi
        pause=$((50 + RANDOM % 650))
        sleep "$((pause / 1000)).$(printf %03d $((pause % 1000)))"
    done
}
export -f client_loop
export TMP WEB SSH FTP DNS MAX_ACTIONS
export NAMES_STR="${NAMES[*]}"

# ---------------------------------------------------------------- attacks
# name|category|ns|victims|tool summary (no commas)
ATTACKS=(
    "nmap-syn-scan|scan|a-synscan|$WEB;$SSH;$FTP;$DNS|nmap -sS top 200 TCP ports of the four servers"
    "nmap-version-scan|scan|a-vscan|$WEB;$SSH;$FTP;$DNS|nmap -sV --version-light top 30 TCP ports of the four servers"
    "hping3-syn-flood|dos|a-synflood|$WEB|hping3 -S -p 80 SYN flood at 250 packets/s (own source address)"
    "slowloris|dos|a-slowloris|$WEB|slowhttptest -H slow headers (Slowloris) 150 connections"
    "ssh-bruteforce|bruteforce|a-sshbrute|$SSH|hydra -t 6 SSH password guessing for user nidslab (50-word list)"
    "ftp-bruteforce|bruteforce|a-ftpbrute|$FTP|hydra -t 8 FTP password guessing for user nidslab (50-word list)"
    "http-flood|dos|a-httpflood|$WEB|ab (ApacheBench) -c 10 GET flood without keep-alive"
    "dns-flood|dos|a-dnsflood|$DNS|dnsperf query flood at 200 queries/s"
)
attack_cmd() {  # name duration -> command line (run inside the attacker namespace)
    local d=$2
    case $1 in
        nmap-syn-scan)     echo "nmap -n -Pn -sS -T4 --max-rate 500 --top-ports 200 $WEB $SSH $FTP $DNS" ;;
        nmap-version-scan) echo "nmap -n -Pn -sV --version-light -T4 --top-ports 30 $WEB $SSH $FTP $DNS" ;;
        hping3-syn-flood)  echo "hping3 -q -S -p 80 -i u4000 -c $((250 * d)) $WEB" ;;
        slowloris)         echo "slowhttptest -H -c 150 -r 50 -i 2 -x 24 -p 3 -l $d -u http://$WEB/" ;;
        ssh-bruteforce)    echo "hydra -I -q -t 6 -l nidslab -P $TMP/passwords.txt ssh://$SSH" ;;
        ftp-bruteforce)    echo "hydra -I -q -t 8 -l nidslab -P $TMP/passwords.txt ftp://$FTP" ;;
        http-flood)        echo "ab -q -c 10 -n $((60 * d)) -s 5 http://$WEB/" ;;
        dns-flood)         echo "dnsperf -q 20 -s $DNS -d $TMP/dns/queries.txt -Q 200 -l $d" ;;
    esac
}

# Schedule: a benign lead-in, then one slot per attack; each attack starts
# at a random point early in its slot and runs for at most D seconds.
NA=${#ATTACKS[@]}
LEAD_MS=$((TEST_S * 1000 * 6 / 100)); ((LEAD_MS < 3000)) && LEAD_MS=3000
TAIL_MS=$((TEST_S * 1000 * 4 / 100)); ((TAIL_MS < 3000)) && TAIL_MS=3000
SLOT_MS=$(((TEST_S * 1000 - LEAD_MS - TAIL_MS) / NA))
D=$((SLOT_MS * 65 / 100 / 1000)); ((D < 4)) && D=4; ((D > 60)) && D=60
GRACE_MS=1500     # after the tool ends: let final FIN/RST exchanges finish
MAX_GRACE_MS=6000

# ---------------------------------------------------------------- run
T_CAPTURE=$(now_ms)
log "capture 1/2: benign only, ${TRAIN_S}s -> $TRAIN_PCAP"
start_capture "$OUT/$TRAIN_PCAP"; TRAIN_TCPDUMP=$TCPDUMP_PID
TRAIN_START_MS=$(now_ms)
TEST_START_MS=$((TRAIN_START_MS + TRAIN_S * 1000))
END_MS=$((TEST_START_MS + TEST_S * 1000))
# Clients are stopped once the capture ends; the deadline is their own
# bound in case the attacks overrun the schedule.
CLIENT_DEADLINE=$((END_MS / 1000 + 120))
for c in "${CLIENTS[@]}"; do
    ip netns exec "$NSP-$c" bash -c 'NAMES=($NAMES_STR); client_loop "$@"' _ "$c" $((SEED * 1000 + ${c#c})) "$CLIENT_DEADLINE" \
        >/dev/null 2>"$TMP/client-$c.err" &
done
sleep_until_ms "$TEST_START_MS"

log "capture 2/2: benign + attacks, ${TEST_S}s -> $TEST_PCAP (slot $((SLOT_MS / 1000))s, attack <= ${D}s)"
start_capture "$OUT/$TEST_PCAP"; TEST_TCPDUMP=$TCPDUMP_PID
stop_capture "$TRAIN_TCPDUMP"
TRAIN_END_MS=$(now_ms)

WINDOWS=()   # name|start_ms|end_ms|command
for ((a = 0; a < NA; a++)); do
    IFS='|' read -r name cat ans victims summary <<<"${ATTACKS[a]}"
    slot_start=$((TEST_START_MS + LEAD_MS + a * SLOT_MS))
    jitter=$((RANDOM % (SLOT_MS * 15 / 100 + 1)))
    sleep_until_ms $((slot_start + jitter))
    cmd=$(attack_cmd "$name" "$D")
    log "attack $((a + 1))/$NA $name from $(host_ip "$ans"): $cmd"
    s=$(now_ms)
    # In the background + wait, so that INT/TERM are handled at once.
    (cd "$TMP" && exec ip netns exec "$NSP-$ans" timeout -k 2 "$D" $cmd >"$TMP/attack-$name.out" 2>&1) &
    wait $! || true
    # Anything the tool left behind in its namespace is stopped before the
    # window closes.
    pids=$(ip netns pids "$NSP-$ans"); [[ -n $pids ]] && kill -KILL $pids 2>/dev/null || true
    # Grace: at least GRACE_MS, then until the attacker has no TCP
    # connection left but TIME-WAIT (victims answer late, e.g. vsftpd's
    # delayed "530 Login incorrect"), at most MAX_GRACE_MS.
    nap "$(secs "$GRACE_MS")"
    g=$(now_ms)
    while (($(now_ms) - g < MAX_GRACE_MS - GRACE_MS)) &&
        ip netns exec "$NSP-$ans" ss -Htan state connected exclude time-wait 2>/dev/null | grep -q .; do
        nap 0.2
    done
    nap 0.3
    e=$(now_ms)
    WINDOWS+=("$name|$s|$e|$cmd")
done
sleep_until_ms "$END_MS"
log "stopping clients and capture"
for c in "${CLIENTS[@]}"; do
    pids=$(ip netns pids "$NSP-$c"); [[ -n $pids ]] && kill -TERM $pids 2>/dev/null || true
done
nap 1
stop_capture "$TEST_TCPDUMP"
T_CAPTURED=$(now_ms)

# ---------------------------------------------------------------- labels
# The public captures' labels format (docs/INGEST.md) plus optional trailing columns
# that src/ingest/labels.rs reads by name: attack (attack name), start and
# end (window, Unix seconds UTC, fractional, inclusive).
LABELS=$OUT/labels.csv
{
    echo "file,attacker_ips,victim_ips,category,source_repo,source_path,notes,attack,start,end"
    echo "$TRAIN_PCAP,,,benign,gpu-nids-lab,$PROG,lab run seed $SEED: benign-only capture ($TRAIN_S s) of 6 clients (${SUBNET_PREFIX}.21-26) using nginx/openssh/vsftpd/dnsmasq servers (${SUBNET_PREFIX}.10-13); whole file benign,,,"
    for ((a = 0; a < NA; a++)); do
        IFS='|' read -r name cat ans victims summary <<<"${ATTACKS[a]}"
        IFS='|' read -r wname s e cmd <<<"${WINDOWS[a]}"
        # Fields hold no commas: commands are written with ; in their place.
        note="lab run seed $SEED: $summary; command: ${cmd//,/;}; packets to or from the attacker inside the window are malicious; benign traffic of 6 clients continues"
        note=${note//$TMP/\$TMP}
        echo "$TEST_PCAP,$(host_ip "$ans"),$victims,$cat,gpu-nids-lab,$PROG,$note,$name,$(secs "$s"),$(secs "$e")"
    done
} > "$LABELS"

# ---------------------------------------------------------------- closing note
log "counting packets"
count() { tcpdump -r "$1" -n -tt "${@:2}" 2>/dev/null | wc -l; }
pairs_stats() {   # file -> "pairs pairs>=64 images" for directional IPv4 pairs
    tcpdump -r "$1" -n -tt ip 2>/dev/null | awk '
        { s=$3; d=$5; sub(/:$/, "", d)
          n=split(s, a, "."); s=a[1]"."a[2]"."a[3]"."a[4]
          n=split(d, b, "."); d=b[1]"."b[2]"."b[3]"."b[4]
          c[s">"d]++ }
        END { p=0; q=0; img=0
              for (k in c) { p++; if (c[k] >= 64) q++; img += int(c[k] / 64) + ((c[k] % 64) >= 8 ? 1 : 0) }
              print p, q, img }'
}
ATTACKER_FILTER=""
for ((a = 0; a < NA; a++)); do
    IFS='|' read -r name cat ans victims summary <<<"${ATTACKS[a]}"
    ATTACKER_FILTER+="${ATTACKER_FILTER:+ or }host $(host_ip "$ans")"
done
ATTACKER_FILTER="ip and ($ATTACKER_FILTER)"
NOTE=$OUT/NOTE.md
{
    echo "# Lab capture set"
    echo
    echo "Made by \`$PROG${ARGS_ORIG:+ $ARGS_ORIG}\` on $(date -u -d @$((T_BEGIN / 1000)) +%Y-%m-%dT%H:%M:%SZ)"
    echo "($(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) CPUs)."
    echo "Seed $SEED; benign-only capture ${TRAIN_S} s, test capture ${TEST_S} s; attack slot $((SLOT_MS / 1000)) s,"
    echo "each attack at most ${D} s, then ${GRACE_MS}-${MAX_GRACE_MS} ms grace until its connections are closed; snap length $SNAP bytes; link type Ethernet."
    echo
    echo "Wall time: $(( (T_CAPTURED - T_BEGIN) / 1000 )) s in all to the end of capture"
    echo "(install $(( (T_INSTALLED - T_BEGIN) / 1000 )) s, setup $(( (T_CAPTURE - T_INSTALLED) / 1000 )) s, capture $(( (T_CAPTURED - T_CAPTURE) / 1000 )) s);"
    echo "the counts below took a few seconds more."
    echo
    echo "## Files"
    echo
    echo "| file | bytes | packets | IPv4 | non-IP | attacker packets | directional IP pairs | pairs with >= 64 packets | 64-packet images (>= 8 rows) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for f in "$TRAIN_PCAP" "$TEST_PCAP"; do
        read -r p q img <<<"$(pairs_stats "$OUT/$f")"
        echo "| $f | $(stat -c %s "$OUT/$f") | $(count "$OUT/$f") | $(count "$OUT/$f" ip) | $(count "$OUT/$f" not ip) | $(count "$OUT/$f" "$ATTACKER_FILTER") | $p | $q | $img |"
    done
    echo
    echo "## Attack windows (test capture)"
    echo
    echo "Times are Unix seconds (UTC); IP packets counted with src or dst = the attacker (ARP not counted)."
    echo
    echo "| attack | attacker | victims | start | end | seconds | packets in window | attacker packets outside window |"
    echo "|---|---|---|---:|---:|---:|---:|---:|"
    for ((a = 0; a < NA; a++)); do
        IFS='|' read -r name cat ans victims summary <<<"${ATTACKS[a]}"
        IFS='|' read -r wname s e cmd <<<"${WINDOWS[a]}"
        aip=$(host_ip "$ans")
        read -r inw outw <<<"$(tcpdump -r "$OUT/$TEST_PCAP" -n -tt "ip and host $aip" 2>/dev/null |
            awk -v s="$(secs "$s")" -v e="$(secs "$e")" '{ if ($1 >= s && $1 <= e) i++; else o++ } END { print i+0, o+0 }')"
        echo "| $name | $aip | ${victims//;/ } | $(secs "$s") | $(secs "$e") | $(secs $((e - s))) | $inw | $outw |"
    done
    echo
    echo "## Commands"
    echo
    for ((a = 0; a < NA; a++)); do
        IFS='|' read -r wname s e cmd <<<"${WINDOWS[a]}"
        echo "- $wname: \`${cmd//$TMP/\$TMP}\`"
    done
    echo
    echo "## Tool versions (Debian packages)"
    echo
    dpkg-query -W -f '- ${Package} ${Version}\n' nginx-light openssh-server openssh-client vsftpd dnsmasq-base curl wget \
        bind9-dnsutils iputils-ping nmap hping3 slowhttptest hydra apache2-utils dnsperf tcpdump 2>/dev/null
} > "$NOTE"

log "done: $OUT"
cat "$NOTE"
