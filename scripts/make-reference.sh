#!/usr/bin/env bash
# Regenerates assets/reference/: the small labelled reference set that
# `gpu-nids train doc-ids` uses when --reference is not given.
#
# It takes the lab's benign demo capture (assets/demo/train-benign.pcap),
# splits it by service into one capture per class (class = file stem:
# dns.pcap, ftp.pcap, http.pcap, icmp.pcap, ssh.pcap), and keeps only the
# first packets of each flow, which is all a DOC-IDS sample reads.
#
# Only the training capture is used by default: test-attacks.pcap is the
# demo's test data, and a reference set made from it would let test traffic
# into training. SOURCES="train-benign.pcap test-attacks.pcap" adds its benign
# part (packets to or from an attacker address of labels.csv are dropped).
#
#   scripts/make-reference.sh [DEMO_DIR [OUT_DIR]]   (defaults: assets/demo assets/reference)
#
# Needs only python3 (standard library). Deterministic: the same input gives
# byte-identical output.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${1:-assets/demo}
OUT=${2:-assets/reference}
# Packets kept per flow: DOC-IDS reads the first 4; a few more leave room for
# a longer --n without making the set large.
KEEP=${KEEP:-8}
# Classes with fewer flows than this are left out (too few to learn or to
# hold out a validation share from).
MIN_FLOWS=${MIN_FLOWS:-20}

python3 - "$DEMO" "$OUT" "$KEEP" "$MIN_FLOWS" <<'PY'
import csv, os, struct, sys

demo, out, keep, min_flows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
SOURCES = os.environ.get("SOURCES", "train-benign.pcap").split()
# Server port -> class. FTP's passive data connections are found separately
# (a TCP connection to a high port of a host that serves port 21).
PORTS = {
    (6, 80): "http", (6, 8080): "http", (6, 443): "tls", (6, 22): "ssh",
    (6, 21): "ftp", (6, 20): "ftp-data", (6, 25): "smtp", (6, 587): "smtp",
    (17, 53): "dns", (6, 53): "dns", (17, 123): "ntp",
}

def die(msg):
    sys.exit(f"make-reference: {msg}")

def read_pcap(path):
    """Yields (header bytes, frame bytes) per record of a classic pcap file."""
    with open(path, "rb") as f:
        gh = f.read(24)
        if len(gh) < 24:
            die(f"{path}: too short for a pcap header")
        magic = gh[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            e = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            e = ">"
        else:
            die(f"{path}: not a classic pcap file (magic {magic.hex()}; pcapng is not supported here)")
        linktype = struct.unpack(e + "I", gh[20:24])[0]
        if linktype != 1:
            die(f"{path}: link type {linktype}, expected 1 (Ethernet)")
        off = 24
        while True:
            rh = f.read(16)
            if not rh:
                return
            if len(rh) < 16:
                die(f"{path}: truncated record header at offset {off}")
            incl = struct.unpack(e + "IIII", rh)[2]
            data = f.read(incl)
            if len(data) < incl:
                die(f"{path}: truncated record at offset {off}")
            yield gh, e, rh, data
            off += 16 + incl

def parse(frame):
    """(proto, src, dst, sport, dport, syn_only) of an Ethernet/IPv4 frame, or None."""
    p = 12
    etype = struct.unpack(">H", frame[p:p + 2])[0] if len(frame) >= 14 else 0
    p = 14
    while etype in (0x8100, 0x88A8) and len(frame) >= p + 4:
        etype = struct.unpack(">H", frame[p + 2:p + 4])[0]
        p += 4
    if etype != 0x0800 or len(frame) < p + 20:
        return None
    ihl = (frame[p] & 15) * 4
    proto = frame[p + 9]
    src, dst = frame[p + 12:p + 16], frame[p + 16:p + 20]
    frag = struct.unpack(">H", frame[p + 6:p + 8])[0] & 0x1FFF
    l4 = p + ihl
    sport = dport = 0
    syn_only = False
    if proto in (6, 17) and frag == 0 and len(frame) >= l4 + 4:
        sport, dport = struct.unpack(">HH", frame[l4:l4 + 4])
        if proto == 6 and len(frame) >= l4 + 14:
            syn_only = frame[l4 + 13] & 0x12 == 0x02
    elif proto == 1 and len(frame) >= l4 + 8:
        t = frame[l4]
        # The crate's flow key: echo-like messages by identifier, others by type.
        ident = struct.unpack(">H", frame[l4 + 4:l4 + 6])[0] if t in (0, 8, 13, 14, 15, 16, 17, 18) else 256 + t
        sport = dport = ident
    return proto, src, dst, sport, dport, syn_only

def key_of(pk):
    proto, src, dst, sp, dp, _ = pk
    a, b = sorted([(src, sp), (dst, dp)])
    return (proto, a, b)

attackers = set()
labels = os.path.join(demo, "labels.csv")
if os.path.exists(labels):
    with open(labels, newline="") as f:
        for row in csv.DictReader(f):
            for ip in (row.get("attacker_ips") or "").split(";"):
                if ip.strip():
                    attackers.add(bytes(int(x) for x in ip.strip().split(".")))

# Pass 1: benign IPv4 packets in capture order, flows, their servers.
packets = []  # (source index, record header, frame, flow key, parsed)
server = {}   # flow key -> (server address, server port), from the first SYN
ftp_servers = set()
header = None
for si, name in enumerate(SOURCES):
    path = os.path.join(demo, name)
    if not os.path.exists(path):
        die(f"{path}: missing (run from the repository root, or pass the demo directory)")
    for gh, e, rh, frame in read_pcap(path):
        if header is None:
            header = (gh, e)
        pk = parse(frame)
        if pk is None or pk[1] in attackers or pk[2] in attackers:
            continue
        k = key_of(pk)
        if pk[0] == 6 and pk[5] and k not in server:
            server[k] = (pk[2], pk[4])
            if pk[4] == 21:
                ftp_servers.add(pk[2])
        packets.append((si, rh, frame, k, pk))

def class_of(k, pk):
    proto = pk[0]
    if proto == 1:
        return "icmp"
    srv = server.get(k)
    if srv is not None:
        c = PORTS.get((proto, srv[1]))
        if c is None and proto == 6 and srv[0] in ftp_servers and srv[1] >= 1024:
            c = "ftp-data"
        return c
    # No SYN seen (UDP, or a connection already open): the well-known port.
    for port in sorted((pk[3], pk[4])):
        c = PORTS.get((proto, port))
        if c is not None:
            return c
    return None

# Pass 2: the first `keep` packets of every flow, by class. A flow is keyed
# per source capture so the two captures' flows never merge.
count, flows, classes = {}, {}, {}
for si, rh, frame, k, pk in packets:
    fk = (si, k)
    if fk not in flows:
        flows[fk] = class_of(k, pk)
    c = flows[fk]
    if c is None:
        continue
    n = count.get(fk, 0)
    if n >= keep:
        continue
    count[fk] = n + 1
    classes.setdefault(c, []).append((si, rh, frame))

nflows = {}
for (si, k), c in flows.items():
    if c is not None:
        nflows[c] = nflows.get(c, 0) + 1

os.makedirs(out, exist_ok=True)
for f in os.listdir(out):
    if f.endswith(".pcap"):
        os.remove(os.path.join(out, f))
gh, e = header
# Records keep their timestamps; within a class they stay in time order
# when SOURCES lists the captures in time order.
written = []
for c in sorted(classes):
    if nflows[c] < min_flows:
        print(f"  {c}: {nflows[c]} flows, fewer than {min_flows}: left out")
        continue
    recs = classes[c]
    tmp = os.path.join(out, f".{c}.pcap.tmp")
    with open(tmp, "wb") as f:
        f.write(gh)
        for si, rh, frame in recs:
            f.write(rh)
            f.write(frame)
    os.replace(tmp, os.path.join(out, f"{c}.pcap"))
    written.append((c, nflows[c], len(recs)))
    print(f"  {c}: {nflows[c]} flows, {len(recs)} packets")
if len(written) < 3:
    die(f"only {len(written)} classes with at least {min_flows} flows; a reference set needs 3 or more")
PY
