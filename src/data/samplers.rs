//! Which samples each optimizer step sees. Every draw is a pure function of the seed
//! and the step (or epoch), so a resumed run continues exactly where an
//! uninterrupted one would be.
//!
//! - [`EpochShuffle`]: each epoch a seeded permutation of the training samples;
//! - [`ReferenceAndTarget`]: DOC-IDS's class-balanced reference batch plus a cyclic
//!   target batch each step.

use crate::ingest::{NameTable, Sample, SampleSet, Samples};
use crate::nn::init::HostRng;

/// One optimizer step's input, gathered on the host.
#[derive(Clone, Debug, Default)]
pub struct HostBatch {
    /// Samples back to back (u8, as ingested).
    pub samples: Vec<u8>,
    pub n: usize,
    /// Labelled reference samples and their class ids, for models trained with a
    /// reference set (DOC-IDS); `None` for the others.
    pub reference: Option<(Vec<u8>, Vec<u32>)>,
}

impl HostBatch {
    pub fn plain(samples: Vec<u8>, n: usize) -> Self {
        HostBatch {
            samples,
            n,
            reference: None,
        }
    }
    /// Samples the step trains on, for samples/s.
    pub fn samples_seen(&self) -> usize {
        self.n + self.reference.as_ref().map_or(0, |r| r.1.len())
    }
}

/// The batches of a training run.
pub trait BatchSource {
    fn steps_per_epoch(&self) -> usize;
    /// The batch of step `k` (0-based) of `epoch` (1-based); `step` counts every
    /// step before it since training began.
    fn batch(&mut self, epoch: usize, k: usize, step: u64) -> HostBatch;
}

/// Samples `idx` of `data`, back to back.
pub fn gather(data: &dyn Samples, idx: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(idx.len() * data.sample_len());
    for &i in idx {
        out.extend_from_slice(data.sample(i));
    }
    out
}

/// The epoch's sample order: depends only on (seed, epoch), so a resumed run repeats it.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = HostRng::new(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for i in (1..n).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    order
}

/// Benign samples split by time: (train, validation) index lists; the latest
/// `val_split` of them are held out.
pub fn split_benign(data: &dyn Samples, val_split: f64) -> (Vec<usize>, Vec<usize>) {
    let mut benign: Vec<usize> = (0..data.len()).filter(|&i| data.labels()[i] == 0).collect();
    benign.sort_by_key(|&i| (data.meta(i).first_ts_ns, i));
    let n_val =
        ((benign.len() as f64 * val_split).round() as usize).min(benign.len().saturating_sub(1));
    let val = benign.split_off(benign.len() - n_val);
    (benign, val)
}

/// Each epoch, the training samples in a seeded order, `batch` at a time.
pub struct EpochShuffle<'a> {
    data: &'a dyn Samples,
    idx: Vec<usize>,
    batch: usize,
    seed: u64,
    order: Option<(usize, Vec<usize>)>,
}

impl<'a> EpochShuffle<'a> {
    pub fn new(data: &'a dyn Samples, idx: Vec<usize>, batch: usize, seed: u64) -> Self {
        EpochShuffle {
            data,
            idx,
            batch,
            seed,
            order: None,
        }
    }
}

impl BatchSource for EpochShuffle<'_> {
    fn steps_per_epoch(&self) -> usize {
        self.idx.len().div_ceil(self.batch)
    }
    fn batch(&mut self, epoch: usize, k: usize, _step: u64) -> HostBatch {
        if self.order.as_ref().map(|o| o.0) != Some(epoch) {
            self.order = Some((epoch, epoch_order(self.idx.len(), self.seed, epoch)));
        }
        let order = &self.order.as_ref().expect("set above").1;
        let lo = k * self.batch;
        let hi = (lo + self.batch).min(order.len());
        let pick: Vec<usize> = order[lo..hi].iter().map(|&o| self.idx[o]).collect();
        HostBatch::plain(gather(self.data, &pick), pick.len())
    }
}

/// Cyclic passes over `items`, reshuffled every pass; draw `t` is a pure function of
/// (seed, t).
pub struct Cyclic {
    items: Vec<usize>,
    seed: u64,
    pass: Option<(usize, Vec<usize>)>,
}

impl Cyclic {
    pub fn new(items: Vec<usize>, seed: u64) -> Self {
        Cyclic {
            items,
            seed,
            pass: None,
        }
    }
    pub fn draw(&mut self, t: u64) -> usize {
        let len = self.items.len();
        let pass = (t / len as u64) as usize;
        if self.pass.as_ref().map(|p| p.0) != Some(pass) {
            self.pass = Some((pass, epoch_order(len, self.seed, pass)));
        }
        self.items[self.pass.as_ref().expect("set above").1[(t % len as u64) as usize]]
    }
}

/// Class-balanced draws: global slot t goes to class order_b[t mod C] of block
/// b = t / C (each block of C slots holds every class once, in a shuffled order), and
/// within a class to the next sample of its own reshuffled cyclic pass.
pub struct Balanced {
    classes: Vec<Cyclic>,
    seed: u64,
    block: Option<(u64, Vec<usize>)>,
}

impl Balanced {
    pub fn new(train: &[usize], labels: &[u32], classes: usize, seed: u64) -> Self {
        let per = (0..classes)
            .map(|c| {
                Cyclic::new(
                    train
                        .iter()
                        .copied()
                        .filter(|&i| labels[i] == c as u32)
                        .collect(),
                    seed ^ (c as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407),
                )
            })
            .collect();
        Balanced {
            classes: per,
            seed: seed ^ 0xC1A_55E5,
            block: None,
        }
    }
    pub fn draw(&mut self, t: u64) -> usize {
        let c = self.classes.len() as u64;
        let block = t / c;
        if self.block.as_ref().map(|b| b.0) != Some(block) {
            self.block = Some((block, epoch_order(c as usize, self.seed, block as usize)));
        }
        let class = self.block.as_ref().expect("set above").1[(t % c) as usize];
        self.classes[class].draw(block)
    }
}

/// DOC-IDS's steps: `batch` class-balanced reference samples with their class ids
/// and `batch` target samples drawn cyclically; an epoch is one pass over the
/// reference training samples.
pub struct ReferenceAndTarget<'a> {
    reference: &'a dyn Samples,
    labels: &'a [u32],
    target: &'a dyn Samples,
    ref_sampler: Balanced,
    tgt_sampler: Cyclic,
    ref_train: usize,
    batch: usize,
}

impl<'a> ReferenceAndTarget<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        reference: &'a dyn Samples,
        labels: &'a [u32],
        classes: usize,
        ref_train: &[usize],
        target: &'a dyn Samples,
        tgt_train: &[usize],
        batch: usize,
        seed: u64,
    ) -> Self {
        ReferenceAndTarget {
            reference,
            labels,
            target,
            ref_sampler: Balanced::new(ref_train, labels, classes, seed),
            tgt_sampler: Cyclic::new(tgt_train.to_vec(), seed ^ 0x7A_56E7),
            ref_train: ref_train.len(),
            batch,
        }
    }
}

impl BatchSource for ReferenceAndTarget<'_> {
    fn steps_per_epoch(&self) -> usize {
        self.ref_train.div_ceil(self.batch)
    }
    fn batch(&mut self, _epoch: usize, _k: usize, step: u64) -> HostBatch {
        let n = self.batch as u64;
        let ri: Vec<usize> = (0..n)
            .map(|k| self.ref_sampler.draw(step * n + k))
            .collect();
        let ti: Vec<usize> = (0..n)
            .map(|k| self.tgt_sampler.draw(step * n + k))
            .collect();
        let rl: Vec<u32> = ri.iter().map(|&i| self.labels[i]).collect();
        HostBatch {
            samples: gather(self.target, &ti),
            n: self.batch,
            reference: Some((gather(self.reference, &ri), rl)),
        }
    }
}

/// Reference classes and each sample's class id: names sorted, so the head's output
/// order does not depend on input order.
pub fn reference_classes(data: &dyn Samples) -> (Vec<String>, Vec<u32>) {
    let names = data.class_names();
    let per_sample: Vec<String> = (0..data.len())
        .map(|i| {
            names
                .get(data.meta(i).class_id as usize)
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let mut used = per_sample.clone();
    used.sort();
    used.dedup();
    let ids = per_sample
        .iter()
        .map(|n| used.binary_search(n).expect("every name is in the list") as u32)
        .collect();
    (used, ids)
}

/// Per class, a seeded `frac` of its samples held out: (train, held-out) index lists.
pub fn split_reference(
    labels: &[u32],
    classes: usize,
    frac: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let (mut train, mut val) = (vec![], vec![]);
    for c in 0..classes {
        let idx: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i] == c as u32)
            .collect();
        let order = epoch_order(idx.len(), seed ^ 0x5EE_D0FC_1A55, c);
        let n_val = ((idx.len() as f64 * frac).round() as usize).min(idx.len().saturating_sub(1));
        for (k, &o) in order.iter().enumerate() {
            if k < n_val {
                val.push(idx[o]);
            } else {
                train.push(idx[o]);
            }
        }
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// At most `limit` samples per class (a seeded choice, kept in input order): a smaller
/// reference set, hence shorter epochs, where the adapter is slow.
pub fn limit_per_class(data: &dyn Samples, limit: usize, seed: u64) -> SampleSet {
    let (classes, labels) = reference_classes(data);
    let mut keep = vec![];
    for c in 0..classes.len() {
        let idx: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i] == c as u32)
            .collect();
        keep.extend(
            epoch_order(idx.len(), seed ^ 0x11_4117, c)
                .into_iter()
                .take(limit)
                .map(|k| idx[k]),
        );
    }
    keep.sort_unstable();
    let mut out = SampleSet::new(data.sample_len());
    out.names = NameTable::from_names(data.class_names().to_vec());
    for i in keep {
        out.push(Sample {
            data: data.sample(i).to_vec(),
            meta: data.meta(i),
        });
    }
    out
}

/// A seeded synthetic flow sample set (random header-like bytes per class), for
/// benchmarks and tests that need data without captures.
pub fn synthetic_flows(n: usize, classes: usize, seed: u64) -> SampleSet {
    const LEN: usize = 320;
    let mut set = SampleSet::new(LEN);
    let mut rng = HostRng::new(seed);
    for c in 0..classes {
        set.names.intern(&format!("class{c}"));
    }
    for i in 0..n {
        let c = i % classes.max(1);
        // A class-specific byte pattern plus noise, and zero padding like short flows.
        let data: Vec<u8> = (0..LEN)
            .map(|j| {
                if j >= 80 * (1 + c % 4) {
                    0
                } else {
                    ((j * (c + 3) + (rng.next_u64() % 32) as usize) % 256) as u8
                }
            })
            .collect();
        let meta = crate::ingest::SampleMeta {
            class_id: c as u16,
            first_ts_ns: i as u64 * 1000,
            ..Default::default()
        };
        set.push(Sample { data, meta });
    }
    set
}
