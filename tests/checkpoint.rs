//! Checkpoints round-trip exactly and reject damaged files with a clear message.

use gpu_nids::checkpoint::Checkpoint;

fn sample() -> Checkpoint {
    let mut c = Checkpoint::default();
    c.insert("enc.w", &[2, 3], vec![1.0, -2.0, 3.5, 0.0, 1e-30, 7.0]);
    c.insert("enc.b", &[2], vec![0.25, -0.5]);
    c.set_json("epoch", &3u32);
    c.meta.insert("model".into(), "vae".into());
    c
}

#[test]
fn round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    sample().save(&p).unwrap();
    let c = Checkpoint::load(&p).unwrap();
    assert_eq!(c.tensors, sample().tensors);
    assert_eq!(c.meta_json::<u32>("epoch").unwrap(), 3);
    assert_eq!(c.meta_str("model").unwrap(), "vae");
    // No temporary file left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn damaged_files_give_clear_errors() {
    let bytes = sample().to_bytes().unwrap();
    let e = Checkpoint::from_bytes(&bytes[..bytes.len() - 3], "cut.safetensors")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cut.safetensors") && (e.contains("corrupt") || e.contains("not a valid")),
        "{e}"
    );
    let e = Checkpoint::from_bytes(b"hello world", "junk")
        .unwrap_err()
        .to_string();
    assert!(e.contains("junk: not a valid safetensors"), "{e}");
    let e = Checkpoint::load(std::path::Path::new("/nonexistent/x.safetensors")).unwrap_err();
    assert!(
        format!("{e:#}").contains("/nonexistent/x.safetensors"),
        "{e:#}"
    );
    let mut nan = sample();
    nan.insert("bad", &[1], vec![f32::NAN]);
    let e = Checkpoint::from_bytes(&nan.to_bytes().unwrap(), "nan")
        .unwrap_err()
        .to_string();
    assert!(e.contains("non-finite") && e.contains("bad"), "{e}");
}
