//! `gpu-nids inspect`: a dataset's header summary, and its samples drawn.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::data::dataset::Dataset;
use crate::ingest::Samples;

#[derive(clap::Args, Debug, Clone)]
pub struct InspectArgs {
    /// Dataset directory written by `gpu-nids ingest`.
    pub dir: PathBuf,
    /// Write the first N samples as a picture (needs -o).
    #[arg(long)]
    pub png: Option<usize>,
    /// Start at this sample index for --png.
    #[arg(long, default_value_t = 0)]
    pub first: usize,
    /// Output PNG path.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run_inspect(a: &InspectArgs) -> Result<()> {
    let ds = Dataset::open(&a.dir)?;
    let h = ds.header();
    let mut o = std::io::stdout().lock();
    writeln!(o, "dataset   {}", a.dir.display())?;
    writeln!(
        o,
        "kind      {:?}, sample shape {:?} ({} bytes)",
        h.kind, h.sample_shape, h.sample_len
    )?;
    writeln!(
        o,
        "samples   {} (benign {}, malicious {})",
        h.count, h.labels.benign, h.labels.malicious
    )?;
    writeln!(o, "classes   {}", h.class_names.len())?;
    for c in &h.class_counts {
        writeln!(
            o,
            "  {:<32} benign {:>8}  malicious {:>8}",
            c.name, c.benign, c.malicious
        )?;
    }
    writeln!(o, "inputs    {}", h.inputs.len())?;
    for r in &h.inputs {
        writeln!(
            o,
            "  {}  {} bytes  {} packets ({} non-IP, {} malicious)  {} samples{}",
            r.path,
            r.size.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
            r.packets,
            r.non_ip_packets,
            r.malicious_packets,
            r.samples,
            if r.warnings.is_empty() {
                String::new()
            } else {
                format!("  [{} warning(s)]", r.warnings.len())
            }
        )?;
    }
    writeln!(o, "options   {}", serde_json::to_string(&h.options)?)?;
    if let Some(n) = a.png {
        let out = a.output.as_ref().context("--png needs -o FILE.png")?;
        write_png(&ds, a.first, n, out)?;
        writeln!(o, "wrote {}", out.display())?;
    }
    Ok(())
}

/// Tiles samples in a grid: images as 64×64, flows as n rows of l pixels
/// stretched 8× vertically so that each packet row is visible.
fn write_png(ds: &Dataset, first: usize, n: usize, out: &Path) -> Result<()> {
    let h = ds.header();
    let total = ds.len().saturating_sub(first).min(n);
    if total == 0 {
        bail!(
            "no samples to draw (dataset holds {}, asked from index {first})",
            ds.len()
        );
    }
    let (rows, cols_px) = (h.sample_shape[0], h.sample_len / h.sample_shape[0].max(1));
    let sy = if rows < 16 { 8 } else { 1 };
    let (tw, th) = (cols_px, rows * sy);
    let gap = 2;
    let per_row = ((total as f64).sqrt().ceil() as usize).max(1);
    let grid_rows = total.div_ceil(per_row);
    let (w, hgt) = (per_row * (tw + gap) + gap, grid_rows * (th + gap) + gap);
    if w * hgt > 64 << 20 {
        bail!("picture would be {w}×{hgt} pixels; ask for fewer samples");
    }
    // Gaps mid-grey so white padding stays distinguishable from them.
    let mut px = vec![128u8; w * hgt];
    for k in 0..total {
        let s = ds.sample(first + k);
        let (gx, gy) = (k % per_row, k / per_row);
        let (x0, y0) = (gap + gx * (tw + gap), gap + gy * (th + gap));
        for y in 0..th {
            let src = &s[(y / sy) * cols_px..(y / sy + 1) * cols_px];
            px[(y0 + y) * w + x0..(y0 + y) * w + x0 + tw].copy_from_slice(src);
        }
    }
    let f = std::fs::File::create(out).with_context(|| format!("{}", out.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w as u32, hgt as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc
        .write_header()
        .with_context(|| format!("{}", out.display()))?;
    wr.write_image_data(&px)
        .with_context(|| format!("{}", out.display()))?;
    Ok(())
}
