//! `Scorer::explain` on tiny hand-set models: the field that differs from what
//! the model reconstructs comes out on top.

mod common;

use gpu_nids::detect::scorer::{ModelScorer, Scorer};
use gpu_nids::models::baselines::{self, Baseline, BaselineKind};
use gpu_nids::models::params;
use gpu_nids::models::registry::Loaded;
use gpu_nids::models::vae::{param_specs, Vae};
use gpu_nids::models::{FlowSpec, ImageSpec, Pair, SampleSpec};

fn logit(v: u8) -> f32 {
    let p = (v as f32 / 255.0).clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

#[test]
fn vae_explain_names_the_ttl_column() {
    let g = common::gpu();
    // All weights zero: the decoder outputs σ(last bias) = 128/255 at every pixel.
    let specs = param_specs();
    let mut values: Vec<Vec<f32>> = specs
        .iter()
        .map(|(_, s, _)| vec![0.0; s.iter().product()])
        .collect();
    *values.last_mut().unwrap() = vec![logit(128)];
    let model = Vae::from_host(g, &values).unwrap();
    let spec = ImageSpec {
        pair: Pair::Directional,
        min_packets: 8,
        mask_addresses: false,
    };
    let model = Loaded::new(model, SampleSpec::Images(spec), None);
    let mut s = ModelScorer::new(g, Box::new(model), 0.0).unwrap();
    // Every row: IPv4 with a 60-byte header (IHL 15), TCP; every byte 128 (what the
    // model gives back) but the version/IHL, the protocol (6) and the ttl (0).
    let mut row = [128u8; 64];
    row[0] = 0x4f;
    row[8] = 0;
    row[9] = 6;
    let image: Vec<u8> = row.repeat(64);
    let e = s.explain(g, &image).unwrap().unwrap();
    assert_eq!(e.fields[0].0, "ip.ttl", "{e:?}");
    assert_eq!(e.fields[1].0, "ip.proto", "{e:?}");
    // |0 − 128/255| of 1.17 per row in all.
    let want = (128.0 / 255.0) / (128.0 / 255.0 + 122.0 / 255.0 + 49.0 / 255.0);
    assert!((e.fields[0].1 - want).abs() < 1e-3, "{e:?}");
    // Equal rows: five packets of 1/64 each.
    assert_eq!(e.packets.len(), 5);
    assert!(e
        .packets
        .iter()
        .all(|&(_, v)| (v - 1.0 / 64.0).abs() < 1e-4));
    // Explained together (one forward), each sample gets its own explanation.
    let mut other = row;
    other[9] = 17;
    let mut both = image.clone();
    both.extend(other.repeat(64));
    both.extend_from_slice(&image);
    let many = s.explain_many(g, &both, 3).unwrap();
    assert_eq!(many.len(), 3);
    let first = many[0].as_ref().unwrap();
    assert_eq!(first.fields, e.fields);
    assert_eq!(many[2].as_ref().unwrap().fields, e.fields);
    assert_ne!(many[1].as_ref().unwrap().fields, e.fields);
}

#[test]
fn flow_explain_names_the_field_that_differs() {
    let g = common::gpu();
    // A normal flow sample: one Ethernet / IPv4 / TCP packet, ttl 64, then zeros.
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend([
        0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0xab, 0xcd, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend([
        0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0x12, 0x34, 0, 0,
    ]);
    let mut normal = f.clone();
    normal.resize(320, 0);
    // The AE with zero weights outputs σ(last bias): the normal sample.
    let kind = BaselineKind::Ae;
    let mut values: Vec<Vec<f32>> = params::specs(&baselines::layers(kind))
        .iter()
        .map(|(_, s)| vec![0.0; s.iter().product()])
        .collect();
    *values.last_mut().unwrap() = normal.iter().map(|&b| logit(b)).collect();
    let net = Baseline::from_host(g, kind, &values).unwrap();
    let net = Loaded::new(net, SampleSpec::Flows(FlowSpec::new(false)), None);
    let mut s = ModelScorer::new(g, Box::new(net), 0.0).unwrap();
    let mut odd = normal.clone();
    odd[14 + 8] = 255;
    let scores = s
        .score(g, &[normal.clone(), odd.clone()].concat(), 2)
        .unwrap();
    assert!(scores[1] > scores[0] * 10.0, "{scores:?}");
    let e = s.explain(g, &odd).unwrap().unwrap();
    assert_eq!(e.fields[0].0, "ip.ttl", "{e:?}");
    assert!(e.fields[0].1 > 0.99, "{e:?}");
}

#[test]
fn doc_ids_explain_by_occlusion_gives_shares_of_named_fields() {
    let g = common::gpu();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("doc.safetensors");
    let opts = tf_options();
    gpu_nids::train::models::train_doc_ids(
        g,
        &gpu_nids::data::samplers::synthetic_flows(24, 3, 1),
        &gpu_nids::data::samplers::synthetic_flows(24, 1, 2),
        &opts,
        &ckpt,
        None,
        &FlowSpec::new(false),
    )
    .unwrap();
    let mut s = gpu_nids::detect::scorer::load_scorer(g, &ckpt, Some(0.0))
        .unwrap()
        .scorer;
    let flows = gpu_nids::data::samplers::synthetic_flows(2, 1, 9);
    let e = s.explain(g, &flows.data[..320]).unwrap().unwrap();
    let total: f64 = e.fields.iter().map(|f| f.1).sum();
    assert!(total <= 1.0 + 1e-9, "{e:?}");
    assert!(e
        .fields
        .iter()
        .all(|(n, v)| *v > 0.0 && (n.contains('.') || n == "pad" || n == "payload")));
    assert!(e
        .packets
        .iter()
        .all(|&(p, v)| p < 4 && v > 0.0 && v <= 1.0 + 1e-9));
    // Explained together (the occluded copies of several samples share scoring passes,
    // here more than one), each sample gets the explanation it gets alone.
    let flows = gpu_nids::data::samplers::synthetic_flows(16, 1, 5);
    let many = s.explain_many(g, &flows.data, 16).unwrap();
    assert_eq!(many.len(), 16);
    for (i, m) in many.iter().enumerate() {
        let alone = s
            .explain(g, &flows.data[i * 320..(i + 1) * 320])
            .unwrap()
            .unwrap();
        let m = m.as_ref().unwrap();
        assert_eq!(m.fields.len(), alone.fields.len(), "sample {i}");
        if let (Some(a), Some(b)) = (m.fields.first(), alone.fields.first()) {
            assert!(
                a.0 == b.0 && (a.1 - b.1).abs() < 1e-3,
                "sample {i}: {m:?} vs {alone:?}"
            );
        }
    }
}

fn tf_options() -> gpu_nids::train::TrainOptions {
    gpu_nids::train::TrainOptions {
        epochs: 1,
        batch: 8,
        log_every: 1,
        quiet: true,
        ..gpu_nids::train::TrainOptions::doc_ids_default()
    }
}
