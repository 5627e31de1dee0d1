//! Issue 16 (points 6-9) as a user meets it: outputs that must not destroy
//! devices, symlinks or inputs; corrupt captures that must not pass as
//! truncated; checkpoints and flags that must not panic; temporary files
//! that must not pile up; errors that name the path once.

#[path = "detect_support/mod.rs"]
mod dsupport;
#[path = "ingest_support/mod.rs"]
mod isupport;

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gpu_nids::checkpoint::Checkpoint;
use gpu_nids::eval::threshold::Threshold;
use gpu_nids::ingest::CaptureReader;
use gpu_nids::models::FlowSpec;
use gpu_nids::models::{baselines, params};
use gpu_nids::train::{TrainOptions as FlowTrainOptions, TrainState as FlowTrainState};
use gpu_nids::util::output;

const BIN: &str = env!("CARGO_BIN_EXE_gpu-nids");

fn demo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/demo")
        .join(name)
}

/// Runs the binary; (stdout, stderr, exit code). The code is -1 when a
/// signal ended it, 101 when it panicked.
fn run(args: &[&str], stdin: Option<&[u8]>) -> (String, String, i32) {
    let mut c = Command::new(BIN)
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
        let b = b.to_vec();
        let mut i = c.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut i, &b);
        });
    }
    let o = c.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

fn assert_clean_failure(what: &str, (out, err, code): &(String, String, i32)) {
    assert!(
        *code == 1 || *code == 2,
        "{what}: exit {code}\nstdout {out}\nstderr {err}"
    );
    assert!(!err.contains("panicked"), "{what}: panicked: {err}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small capture: the first `n` records of the demo training capture.
fn small_capture(dir: &Path, n: usize) -> PathBuf {
    let bytes = std::fs::read(demo("train-benign.pcap")).unwrap();
    let p = dir.join("small.pcap");
    std::fs::write(&p, dsupport::pcap_prefix(&bytes, n)).unwrap();
    p
}

/// An untrained flow-model checkpoint (dense AE) with the given sample
/// metadata, trained-epoch count and threshold.
fn ae_checkpoint(path: &Path, n: usize, l: usize, epoch: usize, threshold: Option<f64>) {
    let layers = baselines::layers(baselines::BaselineKind::Ae);
    let mut c = Checkpoint::default();
    for ((name, shape), v) in params::specs(&layers)
        .into_iter()
        .zip(params::init(&layers, 0))
    {
        c.insert(name, &shape, v);
    }
    c.meta.insert("model".into(), "ae".into());
    let mut spec = FlowSpec::new(true);
    spec.n = n;
    spec.l = l;
    c.set_json("samples", &spec);
    c.set_json(
        "train",
        &FlowTrainState {
            options: FlowTrainOptions::baseline_default(),
            epoch,
            step: 0,
            history: Vec::new(),
            classes: Vec::new(),
            train_samples: 0,
            val_samples: 0,
            ref_train_samples: 0,
            ref_val_samples: 0,
        },
    );
    if let Some(t) = threshold {
        c.set_json(
            "threshold",
            &Threshold {
                value: t,
                alert_fpr: 1e-3,
                ln_mean: 0.0,
                ln_std: 1.0,
                empirical: t,
                n: 2,
            },
        );
    }
    c.save(path).unwrap();
}

// ---- 6. never destroy what is not ours ----------------------------------

#[test]
fn reliability_output_follows_symlinks_and_writes_through_devices() {
    let dir = tempfile::tempdir().unwrap();
    // A symlink: its target is replaced, the link stays a link.
    let target = dir.path().join("real.jsonl");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink("real.jsonl", &link).unwrap();
    gpu_nids::util::write_atomic(&link, b"new").unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    // A dangling symlink: the file it names is created.
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink("made.jsonl", &dangling).unwrap();
    gpu_nids::util::write_atomic(&dangling, b"x").unwrap();
    assert_eq!(std::fs::read(dir.path().join("made.jsonl")).unwrap(), b"x");
    // A character device is written through, not replaced by a file.
    gpu_nids::util::write_atomic(Path::new("/dev/null"), b"scores").unwrap();
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // A FIFO: written through, a reader gets the bytes, it stays a FIFO.
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let f2 = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::read(&f2).unwrap());
    gpu_nids::util::write_atomic(&fifo, b"through").unwrap();
    assert_eq!(reader.join().unwrap(), b"through");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // A directory is refused with its name.
    let e = gpu_nids::util::write_atomic(dir.path(), b"x")
        .unwrap_err()
        .to_string();
    assert!(e.contains(s(dir.path())) && e.contains("directory"), "{e}");
}

#[test]
fn reliability_output_that_is_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cap = small_capture(dir.path(), 50);
    let before = std::fs::read(&cap).unwrap();
    let ck = dir.path().join("ae.safetensors");
    ae_checkpoint(&ck, 4, 80, 1, Some(1.0));
    let alias = dir.path().join("alias.pcap");
    std::os::unix::fs::symlink(&cap, &alias).unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["score", s(&ck), s(&cap), "-o", s(&cap)],
        // Through a symlink, and found inside an input directory.
        vec!["score", s(&ck), s(&cap), "-o", s(&alias)],
        vec!["score", s(&ck), s(dir.path()), "-o", s(&cap)],
        // The checkpoint being scored.
        vec!["score", s(&ck), s(&cap), "-o", s(&ck)],
        vec!["train", "ae", s(&cap), "-o", s(&cap)],
        vec!["detect", "-m", s(&ck), "-r", s(&cap), "-o", s(&cap)],
    ];
    for args in cases {
        let r = run(&args, None);
        assert_clean_failure(&format!("{args:?}"), &r);
        assert!(
            r.1.contains("is the input") && r.1.contains(args[args.len() - 1]),
            "{args:?}: {}",
            r.1
        );
        assert_eq!(
            std::fs::read(&cap).unwrap(),
            before,
            "{args:?} changed the input"
        );
    }
}

// ---- 7. no silent loss ----------------------------------------------------

/// Byte offset of record `i` (0-based) in a classic pcap.
fn record_offset(bytes: &[u8], i: usize) -> usize {
    dsupport::pcap_records(bytes)[i].0
}

#[test]
fn reliability_corrupt_pcap_length_is_an_error_not_a_truncated_tail() {
    let mut bytes = std::fs::read(demo("train-benign.pcap")).unwrap();
    // Record 100's captured length: 10 MB, below the 64 MiB cap, far past
    // the snap length (96) and past the end of the file.
    let off = record_offset(&bytes, 100);
    bytes[off + 8..off + 12].copy_from_slice(&10_000_000u32.to_le_bytes());
    let mut r = CaptureReader::from_bytes("mid.pcap", bytes.clone()).unwrap();
    let e = loop {
        match r.next_frame() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("read to the end: {:?}", r.take_warnings()),
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        e.contains("mid.pcap") && e.contains(&format!("byte offset {off}")),
        "{e}"
    );
    // The same through the CLI, from a file and from stdin.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mid.pcap");
    std::fs::write(&p, &bytes).unwrap();
    let out = dir.path().join("ds");
    let r = run(
        &["ingest", "--kind", "images", s(&p), "-o", s(&out), "-q"],
        None,
    );
    assert_clean_failure("ingest corrupt file", &r);
    assert!(r.1.contains(&format!("byte offset {off}")), "{}", r.1);
    assert!(!out.exists());
    let r = run(
        &["ingest", "--kind", "images", "-", "-o", s(&out), "-q"],
        Some(&bytes),
    );
    assert_clean_failure("ingest corrupt stdin", &r);
    assert!(
        r.1.contains("<stdin>") && r.1.contains(&format!("byte offset {off}")),
        "{}",
        r.1
    );
    // A record cut short by the end of the file is still a warning.
    let good = std::fs::read(demo("train-benign.pcap")).unwrap();
    let cut = &good[..good.len() - 30];
    let mut r = CaptureReader::from_bytes("cut.pcap", cut.to_vec()).unwrap();
    let mut n = 0;
    while r.next_frame().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, dsupport::pcap_records(&good).len() - 1);
    assert!(r.take_warnings()[0].contains("truncated last record"));
}

#[test]
fn reliability_corrupt_pcapng_length_is_an_error_not_a_truncated_tail() {
    use isupport::NgPacket;
    let f = isupport::eth_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80, b"hello");
    let pkts: Vec<NgPacket> = (0..50).map(|i| NgPacket::Epb(0, i, f.clone())).collect();
    let good = isupport::pcapng(&[(1, None)], &pkts);
    let blocks = {
        // Block offsets after the section header and interface block.
        let mut v = Vec::new();
        let mut o = 0;
        while o < good.len() {
            v.push(o);
            o += u32::from_le_bytes(good[o + 4..o + 8].try_into().unwrap()) as usize;
        }
        v
    };
    let off = blocks[10];
    let mut bad = good.clone();
    bad[off + 4..off + 8].copy_from_slice(&10_000_000u32.to_le_bytes());
    for stdin in [false, true] {
        let (name, mut r) = if stdin {
            let src: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(bad.clone()));
            (
                "<stdin>",
                CaptureReader::from_reader("<stdin>".into(), src, None).unwrap(),
            )
        } else {
            (
                "bad.pcapng",
                CaptureReader::from_bytes("bad.pcapng", bad.clone()).unwrap(),
            )
        };
        let e = loop {
            match r.next_frame() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("read to the end: {:?}", r.take_warnings()),
                Err(e) => break e.to_string(),
            }
        };
        assert!(
            e.contains(name) && e.contains(&format!("byte offset {off}")),
            "{e}"
        );
    }
    // Cut inside the last block: a warning, the rest kept.
    let mut r = CaptureReader::from_bytes("cut.pcapng", good[..good.len() - 8].to_vec()).unwrap();
    let mut n = 0;
    while r.next_frame().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 49);
    assert!(r.take_warnings()[0].contains("truncated last block"));
}

// ---- 8. no panic from a checkpoint or a flag ------------------------------

#[test]
fn reliability_flow_checkpoint_metadata_mismatch_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cap = small_capture(dir.path(), 200);
    for (n, l) in [(8, 80), (4, 0), (4, 81)] {
        let ck = dir.path().join(format!("ae-{n}-{l}.safetensors"));
        ae_checkpoint(&ck, n, l, 1, Some(1.0));
        for args in [
            vec!["score", s(&ck), s(&cap)],
            vec!["detect", "-m", s(&ck), "-r", s(&cap), "-q"],
        ] {
            let r = run(&args, None);
            assert_clean_failure(&format!("{args:?}"), &r);
            assert!(
                r.1.contains(s(&ck)) && r.1.contains("'samples'"),
                "{args:?}: {}",
                r.1
            );
            assert_eq!(r.1.matches("error").count(), 1, "one error: {}", r.1);
        }
    }
}

#[test]
fn reliability_checkpoint_fields_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ae.safetensors");
    ae_checkpoint(&ck, 4, 80, 1, Some(1.0));
    gpu_nids::models::registry::read(&ck).unwrap();
    let edit = |f: &dyn Fn(&mut Checkpoint)| {
        let mut c = Checkpoint::load(&ck).unwrap();
        f(&mut c);
        let p = dir.path().join("edited.safetensors");
        std::fs::write(&p, c.to_bytes().unwrap()).unwrap();
        format!("{:#}", gpu_nids::models::registry::read(&p).unwrap_err())
    };
    let e = edit(&|c| {
        c.meta.insert("threshold".into(), "{\"value\": oops".into());
    });
    assert!(
        e.contains("edited.safetensors") && e.contains("'threshold'"),
        "{e}"
    );
    let e = edit(&|c| {
        let t: serde_json::Value = serde_json::from_str(&c.meta["threshold"]).unwrap();
        let mut t = t;
        t["value"] = serde_json::json!(-1.0);
        c.meta.insert("threshold".into(), t.to_string());
    });
    assert!(e.contains("'threshold'"), "{e}");
    let e = edit(&|c| {
        c.meta.insert("model".into(), "cnn".into());
    });
    assert!(e.contains("'model'") && e.contains("cnn"), "{e}");
    let e = edit(&|c| {
        c.meta.remove("samples");
    });
    assert!(e.contains("'samples'"), "{e}");
    let e = edit(&|c| {
        let (name, (shape, _)) = c.tensors.iter().next().unwrap();
        let (name, mut shape) = (name.clone(), shape.clone());
        shape[0] += 1;
        let n = shape.iter().product();
        c.insert(name, &shape, vec![0.0; n]);
    });
    assert!(e.contains("has shape"), "{e}");
    // A VAE whose images could never be made.
    let vae = dir.path().join("vae.safetensors");
    dsupport::write_vae_checkpoint(&vae, Some(1.0));
    gpu_nids::models::registry::read(&vae).unwrap();
    let mut c = Checkpoint::load(&vae).unwrap();
    c.meta.insert(
        "samples".into(),
        r#"{"pair":"directional","min_packets":0,"mask_addresses":false}"#.into(),
    );
    c.save(&vae).unwrap();
    let e = format!("{:#}", gpu_nids::models::registry::read(&vae).unwrap_err());
    assert!(
        e.contains("vae.safetensors") && e.contains("min_packets"),
        "{e}"
    );
    // Header and size are checked before the tensors are read.
    let bytes = std::fs::read(&ck).unwrap();
    let p = dir.path().join("cut.safetensors");
    std::fs::write(&p, &bytes[..bytes.len() - 4]).unwrap();
    let e = format!("{:#}", Checkpoint::load(&p).unwrap_err());
    assert!(
        e.contains("cut.safetensors") && e.contains("truncated"),
        "{e}"
    );
    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&p, &huge).unwrap();
    let e = format!("{:#}", Checkpoint::load(&p).unwrap_err());
    assert!(e.contains("header length"), "{e}");
}

#[test]
fn reliability_bad_flags_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let cap = small_capture(dir.path(), 20);
    let ck = dir.path().join("ae.safetensors");
    ae_checkpoint(&ck, 4, 80, 1, Some(1.0));
    let out = dir.path().join("ds");
    let huge = usize::MAX.to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "ingest",
            s(&cap),
            "-o",
            s(&out),
            "--kind",
            "flows",
            "--flow-packets",
            &huge,
            "--flow-bytes",
            "2",
        ],
        vec![
            "detect",
            "-m",
            s(&ck),
            "-r",
            s(&cap),
            "--idle-timeout",
            "1e300s",
        ],
        vec![
            "detect",
            "-m",
            s(&ck),
            "-r",
            s(&cap),
            "--max-latency",
            "99999999999999999999",
        ],
        vec![
            "detect",
            "-m",
            s(&ck),
            "-r",
            s(&cap),
            "--stats-interval",
            "1e20h",
        ],
        vec!["detect", "-m", s(&ck), "-r", s(&cap), "--threshold", "nan"],
        vec!["detect", "-m", s(&ck), "-r", s(&cap), "--threshold", "inf"],
    ];
    for args in cases {
        let r = run(&args, None);
        assert_clean_failure(&format!("{args:?}"), &r);
    }
    // µs, us and exponents are durations.
    for d in ["500µs", "500us", "1e-3", "1e3ms"] {
        assert!(gpu_nids::detect::parse_duration(d).is_ok(), "{d}");
    }
}

// ---- 9. clean up and say where ---------------------------------------------

/// A PID no process has (the highest ones are free on any test machine).
fn dead_pid() -> u32 {
    (4_000_000..4_194_304)
        .rev()
        .find(|&p| !output::pid_alive(p))
        .unwrap()
}

#[test]
fn reliability_stale_temporaries_of_killed_runs_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dead_pid();
    // A checkpoint write killed half way.
    let stale = dir.path().join(format!(".m.safetensors.tmp-{pid}"));
    std::fs::write(&stale, b"half").unwrap();
    // A live process's temporary is left alone.
    let live_other = dir.path().join(".m.safetensors.tmp-1");
    std::fs::write(&live_other, b"init's").unwrap();
    gpu_nids::util::write_atomic(&dir.path().join("m.safetensors"), b"whole").unwrap();
    assert!(!stale.exists());
    assert!(live_other.exists());
    // An ingest killed by a signal leaves its hidden directory.
    let cap = small_capture(dir.path(), 50);
    let stale_dir = dir.path().join(format!(".ds.tmp-{pid}-0badf00d"));
    std::fs::create_dir(&stale_dir).unwrap();
    std::fs::write(stale_dir.join("samples.u8"), b"half").unwrap();
    let out = dir.path().join("ds");
    let r = run(
        &["ingest", "--kind", "flows", s(&cap), "-o", s(&out), "-q"],
        None,
    );
    assert_eq!(r.2, 0, "{}", r.1);
    assert!(!stale_dir.exists());
    assert!(out.join("header.json").is_file());
}

#[test]
fn reliability_errors_name_the_path_once_and_early() {
    let dir = tempfile::tempdir().unwrap();
    let cap = small_capture(dir.path(), 20);
    let ck = dir.path().join("ae.safetensors");
    ae_checkpoint(&ck, 4, 80, 1, Some(1.0));
    // eval -o under a regular file: refused before any scoring, named.
    let bad = cap.join("report");
    let r = run(&["eval", s(&ck), "--test", s(&cap), "-o", s(&bad)], None);
    assert_clean_failure("eval -o", &r);
    assert!(
        r.1.contains(s(&bad)) && r.1.to_lowercase().contains("not a directory"),
        "{}",
        r.1
    );
    // The OS error text once.
    let missing = dir.path().join("missing.pcap");
    let r = run(
        &[
            "ingest",
            "--kind",
            "images",
            s(&missing),
            "-o",
            s(&dir.path().join("o")),
            "-q",
        ],
        None,
    );
    assert_clean_failure("missing input", &r);
    assert_eq!(
        r.1.matches("No such file or directory").count(),
        1,
        "{}",
        r.1
    );
    assert!(r.1.contains(s(&missing)), "{}", r.1);
    // No checkpoint to go back to when epoch 1 diverges.
    let m = gpu_nids::checkpoint::last_good(&ck, 0);
    assert!(
        m.contains("no checkpoint was written") && !m.contains(s(&ck)),
        "{m}"
    );
    assert!(gpu_nids::checkpoint::last_good(&ck, 3).contains("epoch 3"));
}

#[test]
fn reliability_resume_with_nothing_left_leaves_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cap = small_capture(dir.path(), 20);
    let ck = dir.path().join("ae.safetensors");
    ae_checkpoint(&ck, 4, 80, 3, Some(1.0));
    let before = std::fs::read(&ck).unwrap();
    let mtime = std::fs::metadata(&ck).unwrap().modified().unwrap();
    for epochs in ["2", "3"] {
        let r = run(
            &[
                "train",
                "ae",
                s(&cap),
                "--resume",
                s(&ck),
                "--epochs",
                epochs,
                "-o",
                s(&ck),
                "-q",
            ],
            None,
        );
        assert_eq!(r.2, 0, "{}", r.1);
        assert!(r.0.contains("nothing to do"), "{}", r.0);
    }
    assert_eq!(std::fs::read(&ck).unwrap(), before);
    assert_eq!(std::fs::metadata(&ck).unwrap().modified().unwrap(), mtime);
}

#[test]
fn reliability_ingest_output_symlink_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let cap = small_capture(dir.path(), 50);
    let real = dir.path().join("real-ds");
    let link = dir.path().join("ds");
    std::os::unix::fs::symlink("real-ds", &link).unwrap();
    for _ in 0..2 {
        // Created through the dangling link, then replaced through it.
        let r = run(
            &["ingest", "--kind", "flows", s(&cap), "-o", s(&link), "-q"],
            None,
        );
        assert_eq!(r.2, 0, "{}", r.1);
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(real.join("header.json").is_file());
    }
    // A device is not a dataset directory: refused, untouched.
    let r = run(
        &[
            "ingest",
            "--kind",
            "flows",
            s(&cap),
            "-o",
            "/dev/null",
            "-q",
        ],
        None,
    );
    assert_clean_failure("ingest -o /dev/null", &r);
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn reliability_dataset_write_errors_name_the_users_path() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let cap = small_capture(dir.path(), 200);
    let out = dir.path().join("ds");
    let mut c = Command::new(BIN);
    c.args(["ingest", "--kind", "flows", s(&cap), "-o", s(&out), "-q"]);
    // Files may grow to 100 bytes: the sample file's write fails (EFBIG).
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let l = libc::rlimit {
                rlim_cur: 100,
                rlim_max: 100,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &l);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(s(&out.join("samples.u8"))), "{err}");
    assert!(!err.contains(".tmp-"), "{err}");
    assert_eq!(err.matches("too large").count(), 1, "{err}");
    // Nothing half-written is left: no dataset, no temporary.
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with(".ds"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn reliability_signal_during_ingest_removes_the_partial_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let bytes = std::fs::read(demo("train-benign.pcap")).unwrap();
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut c = Command::new(BIN)
            .args(["ingest", "--kind", "images", "-", "-o", s(&out), "-q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Part of a capture, and stdin left open: ingest waits for more.
        let mut stdin = c.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, &dsupport::pcap_prefix(&bytes, 100)).unwrap();
        let temp = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".ds.tmp-"))
        };
        let mut waited = 0;
        while !temp() {
            std::thread::sleep(std::time::Duration::from_millis(50));
            waited += 1;
            assert!(waited < 1200, "no temporary directory appeared");
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, sig) };
        let o = c.wait_with_output().unwrap();
        drop(stdin);
        assert_eq!(o.status.code(), Some(128 + sig), "{o:?}");
        assert!(!temp(), "temporary left after signal {sig}");
        assert!(!out.exists());
    }
}

#[test]
fn reliability_score_output_through_devices_and_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let cap = small_capture(dir.path(), 100);
    let ck = dir.path().join("ae.safetensors");
    ae_checkpoint(&ck, 4, 80, 1, Some(1.0));
    // -o /dev/null: written through, still the device afterwards.
    let r = run(&["score", s(&ck), s(&cap), "-o", "/dev/null", "-q"], None);
    assert_eq!(r.2, 0, "{}", r.1);
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // -o LINK: the target holds the scores, the link stays.
    let target = dir.path().join("scores.jsonl");
    let link = dir.path().join("latest.jsonl");
    std::os::unix::fs::symlink("scores.jsonl", &link).unwrap();
    let r = run(&["score", s(&ck), s(&cap), "-o", s(&link), "-q"], None);
    assert_eq!(r.2, 0, "{}", r.1);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(
        text.lines().count() > 0 && text.contains("\"score\""),
        "{text}"
    );
}

#[test]
fn reliability_divergence_in_the_first_epoch_says_no_checkpoint_was_written() {
    let dir = tempfile::tempdir().unwrap();
    // The whole demo capture: epoch 1 has many steps, so it diverges inside it.
    let cap = demo("train-benign.pcap");
    let ck = dir.path().join("ae.safetensors");
    // Adam at lr 1e30 overflows the weights in the first steps.
    let r = run(
        &[
            "train",
            "ae",
            s(&cap),
            "-o",
            s(&ck),
            "--lr",
            "1e30",
            "--epochs",
            "2",
            "-q",
        ],
        None,
    );
    assert_clean_failure("diverging training", &r);
    assert!(r.1.contains("epoch 1"), "{}", r.1);
    assert!(r.1.contains("no checkpoint was written"), "{}", r.1);
    assert!(
        !ck.exists(),
        "no checkpoint may be left at {}",
        ck.display()
    );
}
