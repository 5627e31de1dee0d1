//! `gpu-nids detect` as a user runs it: files, stdin, BPF filters, log
//! directories, SIGTERM in the middle of a slow stream, and live capture
//! on a veth pair inside network namespaces the test makes itself.

#[path = "detect_support/mod.rs"]
mod dsupport;
#[path = "ingest_support/mod.rs"]
mod isupport;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use dsupport::*;

const BIN: &str = env!("CARGO_BIN_EXE_gpu-nids");

fn checkpoint(dir: &Path) -> PathBuf {
    let p = dir.join("vae.safetensors");
    write_vae_checkpoint(&p, Some(0.0));
    p
}

fn detect(args: &[&str], stdin: Option<Vec<u8>>) -> (String, String, i32) {
    let mut c = Command::new(BIN)
        .arg("detect")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(b) = stdin {
        let mut i = c.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = i.write_all(&b);
        });
    }
    let o = c.wait_with_output().unwrap();
    (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
        o.status.code().unwrap_or(-1),
    )
}

/// What identifies an alert (stats and scores aside).
fn ident(a: &Value) -> Value {
    json!([
        a["timestamp"],
        a["flow_id"],
        a["src_ip"],
        a["dest_ip"],
        a["community_id"],
        a["pcap_cnt"],
        gn(a, "sample_packets"),
        gn(a, "first_pcap_cnt")
    ])
}

fn idents(ev: &[Value]) -> Vec<Value> {
    let mut v: Vec<Value> = alerts(ev).iter().map(ident).collect();
    v.sort_by_key(|x| x.to_string());
    v
}

#[test]
fn file_stdin_filter_and_log_dir() {
    let Some(data) = isupport::data_dir() else {
        return;
    };
    let pcap = data.join("attacks/malware/trickbot.pcap");
    let dir = tempfile::tempdir().unwrap();
    let ck = checkpoint(dir.path());
    let ck = ck.to_str().unwrap();
    let common = ["-m", ck, "--batch", "8", "--idle-timeout", "1h", "-o", "-"];

    let (out, err, code) = detect(
        &[&common[..], &["-r", pcap.to_str().unwrap()]].concat(),
        None,
    );
    assert_eq!(code, 0, "{err}");
    let ev = parse_eve(&out);
    let al = alerts(&ev);
    assert_eq!(al.len(), 2, "{out}");
    al.iter().for_each(assert_eve_alert);
    assert_eq!(ev.last().unwrap()["event_type"], "stats");
    assert_eq!(ev.last().unwrap()["stats"]["decoder"]["pkts"], 74);

    let (out2, err2, code2) = detect(
        &[&common[..], &["-r", "-"]].concat(),
        Some(std::fs::read(&pcap).unwrap()),
    );
    assert_eq!(code2, 0, "{err2}");
    assert_eq!(
        idents(&parse_eve(&out2)),
        idents(&ev),
        "stdin and file give the same alerts"
    );

    // tcpdump-style filter after the options: only one direction is left.
    let (out3, err3, code3) = detect(
        &[
            &common[..],
            &["-r", pcap.to_str().unwrap(), "src", "host", "10.12.29.101"],
        ]
        .concat(),
        None,
    );
    assert_eq!(code3, 0, "{err3}");
    let ev3 = parse_eve(&out3);
    let al3 = alerts(&ev3);
    assert_eq!(al3.len(), 1);
    assert_eq!(al3[0]["src_ip"], "10.12.29.101");
    // 46 packets of the other direction filtered out: 28 decoded.
    assert_eq!(ev3.last().unwrap()["stats"]["decoder"]["pkts"], 28);

    let (_, err4, code4) = detect(
        &[
            "-m",
            ck,
            "-r",
            pcap.to_str().unwrap(),
            "-o",
            "-",
            "not",
            "a",
            "(filter",
        ],
        None,
    );
    assert_ne!(code4, 0);
    assert!(err4.contains("invalid BPF filter expression"), "{err4}");

    // -l appends to LOGDIR/eve.json, as Suricata does.
    let logdir = dir.path().join("log");
    let l = logdir.to_str().unwrap();
    for _ in 0..2 {
        let (out5, err5, code5) = detect(
            &[
                "-m",
                ck,
                "--batch",
                "8",
                "--idle-timeout",
                "1h",
                "-l",
                l,
                "-r",
                pcap.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(code5, 0, "{err5}");
        assert!(out5.is_empty());
    }
    let ev5 = parse_eve(&std::fs::read_to_string(logdir.join("eve.json")).unwrap());
    assert_eq!(alerts(&ev5).len(), 4);
    assert_eq!(idents(&ev5[..ev5.len() / 2]), idents(&ev));
}

fn pid_kill(pid: u32, sig: i32) {
    // SAFETY: signalling a child process this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

#[test]
fn sigterm_mid_stream_loses_no_alert() {
    let Some(data) = isupport::data_dir() else {
        return;
    };
    let full = std::fs::read(data.join("benign/netflix.pcap")).unwrap();
    let total = 600;
    let bytes = pcap_prefix(&full, total);
    let recs = pcap_records(&bytes);
    let dir = tempfile::tempdir().unwrap();
    let ck = checkpoint(dir.path());
    let args = [
        "detect",
        "-m",
        ck.to_str().unwrap(),
        "--batch",
        "8",
        "--idle-timeout",
        "5s",
        "--stats-interval",
        "0",
        "-o",
        "-",
    ];
    let mut child = Command::new(BIN)
        .args(args)
        .args(["-r", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let err_lines = std::thread::spawn(move || {
        let mut all = Vec::new();
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if l.starts_with("detect: reading") {
                let _ = ready_tx.send(());
            }
            all.push(l);
        }
        all.join("\n")
    });
    let (half_tx, half_rx) = mpsc::channel();
    let feeder = std::thread::spawn(move || {
        // The header first: the detector reads it before it starts.
        if stdin.write_all(&bytes[..24]).is_err() {
            return;
        }
        // Packets only once the model is loaded, so that the signal below
        // falls in the middle of the stream however slow the start-up.
        if ready_rx.recv_timeout(Duration::from_secs(120)).is_err() {
            return;
        }
        // Slowly: 10 packets every 30 ms, as a live tcpdump pipe would.
        for (i, c) in recs.chunks(10).enumerate() {
            let (a, b) = (c[0].0, c[c.len() - 1].1);
            if stdin.write_all(&bytes[a..b]).is_err() {
                return;
            }
            if i == 30 {
                let _ = half_tx.send(());
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        // Hold the pipe open: the detector must stop on the signal, not EOF.
        std::thread::sleep(Duration::from_secs(30));
    });
    half_rx
        .recv_timeout(Duration::from_secs(150))
        .expect("the detector started and read half the stream");
    pid_kill(child.id(), libc::SIGTERM);
    let t = Instant::now();
    let o = child.wait_with_output().unwrap();
    let err = err_lines.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(25),
        "stopped without waiting for the pipe"
    );
    drop(feeder);
    let text = String::from_utf8(o.stdout).unwrap();
    let ev = parse_eve(&text);
    let stats = ev.last().unwrap();
    assert_eq!(stats["event_type"], "stats");
    let p = stats["stats"]["decoder"]["pkts"].as_u64().unwrap() as usize;
    assert!(
        p > 0 && p < total,
        "interrupted mid-stream: {p} of {total} packets"
    );
    let interrupted = idents(&ev);
    eprintln!(
        "interrupted after {p} of {total} packets with {} alerts",
        interrupted.len()
    );
    assert!(!interrupted.is_empty(), "the interrupted run alerted");

    // The same packets read from a file to their end: the same alerts.
    let prefix = dir.path().join("prefix.pcap");
    std::fs::write(&prefix, pcap_prefix(&full, p)).unwrap();
    let (out, err2, code) = detect(
        &[&args[1..], &["-r", prefix.to_str().unwrap()]].concat(),
        None,
    );
    assert_eq!(code, 0, "{err2}");
    let whole = idents(&parse_eve(&out));
    assert_eq!(
        interrupted.len(),
        whole.len(),
        "alert counts: interrupted {} vs -r {}",
        interrupted.len(),
        whole.len()
    );
    assert_eq!(interrupted, whole);
}

/// Runs a command, true on success.
fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Two network namespaces joined by a veth pair on 198.18.0.0/30 (the
/// RFC 2544 benchmarking range), existing only inside them; removed on
/// drop whatever happens.
struct Netns {
    a: String,
    b: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.a]);
        sh(&["ip", "netns", "del", &self.b]);
    }
}

fn make_netns() -> Result<Netns, String> {
    let id = std::process::id();
    let n = Netns {
        a: format!("gnids-a-{id}"),
        b: format!("gnids-b-{id}"),
    };
    let (a, b) = (n.a.as_str(), n.b.as_str());
    let steps: Vec<Vec<&str>> = vec![
        vec!["ip", "netns", "add", a],
        vec!["ip", "netns", "add", b],
        vec![
            "ip", "-n", a, "link", "add", "gn0", "type", "veth", "peer", "name", "gn1", "netns", b,
        ],
        vec!["ip", "-n", a, "addr", "add", "198.18.0.1/30", "dev", "gn0"],
        vec!["ip", "-n", b, "addr", "add", "198.18.0.2/30", "dev", "gn1"],
        vec!["ip", "-n", a, "link", "set", "gn0", "up"],
        vec!["ip", "-n", b, "link", "set", "gn1", "up"],
    ];
    for s in steps {
        if !sh(&s) {
            return Err(format!("`{}` failed", s.join(" ")));
        }
    }
    Ok(n)
}

#[test]
fn live_capture_on_a_private_veth_pair() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "skipping live capture test: needs root (network namespaces, promiscuous capture)"
        );
        return;
    }
    if !sh(&["ip", "-V"]) || !sh(&["ping", "-V"]) {
        eprintln!("skipping live capture test: needs iproute2 (ip) and ping");
        return;
    }
    let ns = match make_netns() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("skipping live capture test: cannot make network namespaces here ({e})");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let ck = checkpoint(dir.path());
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.a,
            BIN,
            "detect",
            "-m",
            ck.to_str().unwrap(),
            "-i",
            "gn0",
        ])
        .args([
            "--batch",
            "8",
            "--max-latency",
            "50ms",
            "--idle-timeout",
            "1s",
            "--stats-interval",
            "1s",
            "-o",
            "-",
            "icmp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (etx, erx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = etx.send(l);
        }
    });
    let (otx, orx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = otx.send(l);
        }
    });
    let mut err_lines = Vec::new();
    let ready = loop {
        match erx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => {
                let r = l.contains("capturing on gn0");
                err_lines.push(l);
                if r {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    assert!(ready, "detector did not start: {err_lines:?}");
    // 16 echo requests and 16 replies: two directed pairs of 16 packets,
    // each a partial image once idle for 1 s.
    assert!(
        sh(&[
            "ip",
            "netns",
            "exec",
            &ns.b,
            "ping",
            "-c",
            "16",
            "-i",
            "0.05",
            "-W",
            "1",
            "198.18.0.1"
        ]),
        "ping across the veth pair"
    );
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while alerts(&lines).len() < 2 && Instant::now() < deadline {
        if let Ok(l) = orx.recv_timeout(Duration::from_millis(200)) {
            lines.push(
                serde_json::from_str::<Value>(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")),
            );
        }
    }
    pid_kill(child.id(), libc::SIGTERM);
    let status = child.wait().unwrap();
    while let Ok(l) = orx.recv_timeout(Duration::from_millis(500)) {
        lines.push(serde_json::from_str::<Value>(&l).unwrap());
    }
    assert_eq!(status.code(), Some(0));
    let al = alerts(&lines);
    assert_eq!(al.len(), 2, "alerts from the live pairs: {lines:?}");
    let mut pairs: Vec<(String, String)> = al
        .iter()
        .map(|a| {
            (
                a["src_ip"].as_str().unwrap().into(),
                a["dest_ip"].as_str().unwrap().into(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("198.18.0.1".into(), "198.18.0.2".into()),
            ("198.18.0.2".into(), "198.18.0.1".into())
        ]
    );
    for a in &al {
        assert_eve_alert(a);
        assert_eq!(a["in_iface"], "gn0");
        assert_eq!(gn(a, "sample_packets"), "16");
        assert!(a.get("pcap_cnt").is_none(), "no pcap_cnt live, as Suricata");
    }
    let st = lines
        .iter()
        .rev()
        .find(|v| v["event_type"] == "stats")
        .expect("stats line");
    assert!(st["stats"]["capture"]["kernel_drops"].is_u64());
    assert_eq!(
        st["stats"]["decoder"]["pkts"], 32,
        "the kernel filter passed only the ICMP echoes"
    );
}
