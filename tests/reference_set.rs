//! The reference set the repository ships (assets/reference/) is what `train doc-ids`
//! uses without --reference: it must load as one class per capture with enough flows
//! in each, a missing default must fail with a clear line, and
//! scripts/make-reference.sh must still regenerate it byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gpu_nids::cli::train::{reference_inputs, DEFAULT_REFERENCE};
use gpu_nids::cli::{flow_options, CaptureArgs};
use gpu_nids::data::load;
use gpu_nids::ingest::ClassSource;
use gpu_nids::models::FlowSpec;

const BIN: &str = env!("CARGO_BIN_EXE_gpu-nids");
const CLASSES: [&str; 5] = ["dns", "ftp", "http", "icmp", "ssh"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn default_reference_set_loads_one_class_per_capture() {
    // Cargo runs integration tests from the crate root, where the default resolves.
    assert_eq!(std::env::current_dir().unwrap(), root());
    let files = reference_inputs(&[]).unwrap();
    let mut stems: Vec<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    assert_eq!(stems, CLASSES);
    assert!(files
        .iter()
        .all(|f| f.starts_with(DEFAULT_REFERENCE) && f.extension().unwrap() == "pcap"));

    // The options train doc-ids gives its reference set.
    let capture = CaptureArgs {
        labels: None,
        split: None,
        split_frac: 0.7,
    };
    let mut o = flow_options(&capture, &FlowSpec::new(true), true).unwrap();
    o.class = ClassSource::FileStem;
    let set = load(&files, &o).unwrap().set;
    let mut per_class = BTreeMap::new();
    for m in &set.meta {
        *per_class
            .entry(set.names.get(m.class_id).unwrap().to_string())
            .or_insert(0usize) += 1;
    }
    println!("flows per class: {per_class:?}");
    assert_eq!(
        per_class.keys().map(String::as_str).collect::<Vec<_>>(),
        CLASSES
    );
    // Enough per class for a 10 % held-out share and class-balanced batches.
    assert!(per_class.values().all(|&n| n >= 20), "{per_class:?}");
    assert!(
        set.labels.iter().all(|&l| l == 0),
        "reference flows are benign"
    );
    let total: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    assert!(total < 2 << 20, "reference set grew to {total} bytes");
}

#[test]
fn missing_default_reference_is_one_clear_error() {
    let dir = std::env::temp_dir().join(format!("gpu-nids-noref-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = root().join("assets/demo/train-benign.pcap");
    let out = Command::new(BIN)
        .current_dir(&dir)
        .args(["train", "doc-ids", "-q", "--target"])
        .arg(&target)
        .args(["-o", "d.safetensors"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("assets/reference") && err.contains("--reference"),
        "{err}"
    );
    assert!(!dir.join("d.safetensors").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn make_reference_script_regenerates_the_shipped_set() {
    if cfg!(windows) || Command::new("python3").arg("--version").output().is_err() {
        println!("skipped: scripts/make-reference.sh needs bash and python3");
        return;
    }
    let dir = std::env::temp_dir().join(format!("gpu-nids-ref-{}", std::process::id()));
    let out = Command::new(root().join("scripts/make-reference.sh"))
        .arg(root().join("assets/demo"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shipped = Path::new(DEFAULT_REFERENCE);
    for c in CLASSES {
        let f = format!("{c}.pcap");
        assert!(
            std::fs::read(dir.join(&f)).unwrap() == std::fs::read(shipped.join(&f)).unwrap(),
            "{f}: scripts/make-reference.sh no longer makes the shipped file"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
