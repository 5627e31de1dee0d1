//! Per-adapter choice among kernel variants, by a short measurement cached on disk.
//!
//! The first time a product of a given shape class runs on an adapter, each candidate
//! kernel computes it once (after one warm-up that also compiles it), those close to
//! the best once more, and the fastest wins. Choices are kept in memory and in
//! `$XDG_CACHE_HOME/gpu-nids/tune.tsv` (fallback `~/.cache/gpu-nids/`), keyed by
//! adapter name, driver and shape class, so later runs start at once and pick the
//! same. The key also holds a fingerprint of the kernels' sources, so a build whose
//! kernels changed measures again instead of trusting timings of code it no longer has
//! (and drops the old choices when it saves). A missing or unwritable cache only costs
//! the measurement again; it never fails a run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use crate::gpu::{Gpu, GpuError, Kernel};

/// Whether this process may time variants: off when `GPU_NIDS_TUNE=off` (or `0`), and
/// for devices opened with `GpuOptions::tune == false` (tests: deterministic choices).
pub fn enabled(gpu: &Gpu) -> bool {
    gpu.tune && !matches!(std::env::var("GPU_NIDS_TUNE").as_deref(), Ok("off" | "0"))
}

fn cache_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("gpu-nids").join("tune.tsv"))
}

/// In-memory copy of the cache: key → chosen variant name.
static CHOICES: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// FNV-1a of every shader's name and source: which kernels this build times.
fn kernels_fingerprint() -> &'static str {
    static F: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (name, src) in crate::gpu::kernel::shaders() {
            for b in name.bytes().chain([0]).chain(src.bytes()).chain([0]) {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
        format!("kernels {h:016x}")
    })
}

fn key(gpu: &Gpu, class: &str) -> String {
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    format!(
        "{}\t{} {}\t{}\t{}",
        clean(&gpu.info.name),
        clean(&gpu.info.driver),
        clean(&gpu.info.driver_info),
        kernels_fingerprint(),
        class
    )
}

fn load() -> HashMap<String, String> {
    let Some(text) = cache_path().and_then(|p| std::fs::read_to_string(p).ok()) else {
        return HashMap::new();
    };
    // Choices timed on other kernels (older formats included) are left out, so the
    // next save drops them.
    let current = format!("\t{}\t", kernels_fingerprint());
    text.lines()
        .filter(|l| l.contains(&current))
        .filter_map(|l| l.rsplit_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn save(map: &HashMap<String, String>) {
    let Some(path) = cache_path() else { return };
    let mut lines: Vec<String> = map.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    lines.sort();
    // Write a sibling and rename, so a concurrent reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let ok = path
        .parent()
        .is_some_and(|d| std::fs::create_dir_all(d).is_ok())
        && std::fs::write(&tmp, lines.concat()).is_ok()
        && std::fs::rename(&tmp, &path).is_ok();
    if !ok {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The cached choice for `class` on this adapter, if any.
pub fn cached(gpu: &Gpu, class: &str) -> Option<String> {
    let mut g = CHOICES.lock().unwrap_or_else(|p| p.into_inner());
    g.get_or_insert_with(load).get(&key(gpu, class)).cloned()
}

fn remember(gpu: &Gpu, class: &str, choice: &str) {
    let mut g = CHOICES.lock().unwrap_or_else(|p| p.into_inner());
    let map = g.get_or_insert_with(load);
    map.insert(key(gpu, class), choice.to_string());
    // Merge with what other processes wrote meanwhile, then write back.
    let mut merged = load();
    merged.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
    save(&merged);
}

/// CPU seconds this process has used, all threads (user + system).
#[cfg(unix)]
pub fn cpu_seconds() -> Option<f64> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) } == 0;
    ok.then(|| {
        // SAFETY: initialised by the successful call above.
        let ru = unsafe { ru.assume_init() };
        let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        s(ru.ru_utime) + s(ru.ru_stime)
    })
}

#[cfg(not(unix))]
pub fn cpu_seconds() -> Option<f64> {
    None
}

/// Cost of one submit + wait of what `record` records. On a CPU adapter this is the
/// process's CPU time, which other processes on a shared machine barely disturb
/// (wall time there measures the neighbours as much as the kernel); elsewhere, wall time.
pub fn run_cost(
    gpu: &Gpu,
    record: &dyn Fn(&mut crate::gpu::Batch) -> Result<(), GpuError>,
) -> Result<f64, GpuError> {
    let mut b = gpu.batch();
    record(&mut b)?;
    let cpu = gpu.info.is_software().then(cpu_seconds).flatten();
    let t0 = Instant::now();
    b.submit()?;
    gpu.sync()?;
    Ok(match (cpu, cpu_seconds()) {
        (Some(c0), Some(c1)) => c1 - c0,
        _ => t0.elapsed().as_secs_f64(),
    })
}

/// The fastest of `candidates` for `class` (cached), each timed by `time(name, first)`,
/// which should warm up (and so compile the kernel) before timing when `first`.
/// Returns the first candidate without timing when tuning is off.
pub fn choose<'a>(
    gpu: &Gpu,
    class: &str,
    candidates: &[&'a str],
    mut time: impl FnMut(&str, bool) -> Result<f64, GpuError>,
) -> Result<&'a str, GpuError> {
    if !enabled(gpu) || candidates.len() < 2 {
        return Ok(candidates[0]);
    }
    if let Some(c) = cached(gpu, class) {
        if let Some(hit) = candidates.iter().find(|n| **n == c) {
            return Ok(hit);
        }
    }
    let win = fastest(candidates.len(), |i, first| time(candidates[i], first))?;
    remember(gpu, class, candidates[win]);
    Ok(candidates[win])
}

/// Index of the fastest of `n` candidates. Each is timed once by `time(i, true)`
/// (`true`: its first run); those within
/// `RETIME` of the best are timed again, in reverse order, and keep their faster time.
/// The tall tiles are often within 10 % of each other, about one run's noise on a busy
/// CPU adapter, and the reversed order evens out drift in between; candidates far
/// behind (the plain blocks on llvmpipe, 2–4× slower) are not worth a second run.
pub fn fastest(
    n: usize,
    mut time: impl FnMut(usize, bool) -> Result<f64, GpuError>,
) -> Result<usize, GpuError> {
    const RETIME: f64 = 1.5;
    let mut best = Vec::with_capacity(n);
    for i in 0..n {
        best.push(time(i, true)?);
    }
    let lead = best.iter().copied().fold(f64::INFINITY, f64::min);
    for i in (0..n).rev() {
        if best[i] <= RETIME * lead {
            best[i] = best[i].min(time(i, false)?);
        }
    }
    Ok((0..n)
        .min_by(|&a, &b| best[a].total_cmp(&best[b]))
        .unwrap_or(0))
}

/// A kernel together with its workgroup grid.
pub type Launch = (Kernel, [u32; 3]);
