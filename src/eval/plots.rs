//! PNG pictures for reports: ROC and PR curves, score histograms, image strips.
//!
//! plotters draws text with a font it is given; we register the first system TrueType
//! font found (DejaVu/Liberation on Linux, Arial/Helvetica elsewhere). Without one the
//! pictures are still drawn, with no text.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use plotters::prelude::*;

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// True when a font was registered (so captions and labels can be drawn).
fn have_font() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        for p in FONT_CANDIDATES {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

const PALETTE: [RGBColor; 12] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 128, 0),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Several named curves on the unit square (ROC or PR), with a legend.
pub fn curves(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    diagonal: bool,
) -> Result<()> {
    let text = have_font();
    let root = BitMapBackend::new(path, (720, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&root);
    b.margin(16)
        .x_label_area_size(if text { 40 } else { 8 })
        .y_label_area_size(if text { 50 } else { 8 });
    if text {
        b.caption(title, ("sans-serif", 22));
    }
    let mut chart = b.build_cartesian_2d(0f64..1f64, 0f64..1.02f64)?;
    if text {
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()?;
    } else {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .x_labels(0)
            .y_labels(0)
            .draw()?;
    }
    if diagonal {
        chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?;
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = color(i);
        let s = chart.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?;
        if text {
            s.label(name.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Histograms of log10(score) per class, overlaid (outlines), with the threshold marked.
pub fn score_histogram(
    path: &Path,
    title: &str,
    classes: &[(String, Vec<f64>)],
    threshold: Option<f64>,
) -> Result<()> {
    let text = have_font();
    let logs: Vec<(String, Vec<f64>)> = classes
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                v.iter()
                    .filter(|s| **s > 0.0 && s.is_finite())
                    .map(|s| s.log10())
                    .collect(),
            )
        })
        .collect();
    let all: Vec<f64> = logs.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let (mut lo, mut hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    // Keep the threshold in view even when it lies beyond every score.
    if let Some(t) = threshold.filter(|t| *t > 0.0 && t.is_finite()) {
        (lo, hi) = (lo.min(t.log10()), hi.max(t.log10()));
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let bins = 50usize;
    let width = (hi - lo) / bins as f64;
    let hist: Vec<(String, Vec<f64>)> = logs
        .iter()
        .map(|(n, v)| {
            let mut h = vec![0f64; bins];
            for &x in v {
                h[(((x - lo) / width) as usize).min(bins - 1)] += 1.0;
            }
            let total = v.len().max(1) as f64;
            (n.clone(), h.into_iter().map(|c| c / total).collect())
        })
        .collect();
    let ymax = hist
        .iter()
        .flat_map(|(_, h)| h.iter().copied())
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.1;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&root);
    b.margin(16)
        .x_label_area_size(if text { 40 } else { 8 })
        .y_label_area_size(if text { 60 } else { 8 });
    if text {
        b.caption(title, ("sans-serif", 22));
    }
    let mut chart = b.build_cartesian_2d(lo..hi, 0f64..ymax)?;
    if text {
        chart
            .configure_mesh()
            .x_desc("log10(score)")
            .y_desc("fraction of class")
            .draw()?;
    }
    for (i, (name, h)) in hist.iter().enumerate() {
        let c = color(i);
        let pts: Vec<(f64, f64)> = h
            .iter()
            .enumerate()
            .flat_map(|(k, &y)| [(lo + k as f64 * width, y), (lo + (k + 1) as f64 * width, y)])
            .collect();
        let s = chart.draw_series(LineSeries::new(pts, c.stroke_width(2)))?;
        if text {
            s.label(format!("{name} ({})", classes[i].1.len()))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        }
    }
    if let Some(t) = threshold.filter(|t| *t > 0.0) {
        let x = t.log10();
        let s = chart.draw_series(LineSeries::new(
            [(x, 0.0), (x, ymax)],
            BLACK.stroke_width(1),
        ))?;
        if text {
            s.label("threshold")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Rows of grayscale images side by side (e.g. input | reconstruction | |difference|),
/// each pixel in [0, 1], scaled up `zoom` times; `notes[r]` (lines of text, e.g. the
/// header fields that drove a score) is written to the right of row r when a font exists.
pub fn image_rows(
    path: &Path,
    rows: &[Vec<&[f32]>],
    side: usize,
    zoom: usize,
    notes: &[Vec<String>],
) -> Result<()> {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(1);
    let gap = 4;
    let cell = side * zoom + gap;
    let text = have_font() && notes.iter().any(|n| !n.is_empty());
    let note_w = if text { 260 } else { 0 };
    let (w, h) = (
        (cols * cell + gap + note_w) as u32,
        (rows.len().max(1) * cell + gap) as u32,
    );
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&RGBColor(200, 40, 40))?;
    for (r, row) in rows.iter().enumerate() {
        for (c, img) in row.iter().enumerate() {
            let (x0, y0) = (gap + c * cell, gap + r * cell);
            for py in 0..side * zoom {
                for px in 0..side * zoom {
                    let v = img
                        .get(py / zoom * side + px / zoom)
                        .copied()
                        .unwrap_or(0.0);
                    let v = (v.clamp(0.0, 1.0) * 255.0) as u8;
                    root.draw_pixel(((x0 + px) as i32, (y0 + py) as i32), &RGBColor(v, v, v))?;
                }
            }
        }
        if text {
            let x0 = (cols * cell + gap) as i32;
            let y0 = (gap + r * cell) as i32;
            root.draw(&Rectangle::new(
                [
                    (x0, y0),
                    (x0 + note_w as i32 - gap as i32, y0 + (side * zoom) as i32),
                ],
                WHITE.filled(),
            ))?;
            let line_h = 15;
            for (k, line) in notes.get(r).into_iter().flatten().enumerate() {
                let y = y0 + 4 + k as i32 * line_h;
                if y + line_h > y0 + (side * zoom) as i32 {
                    break;
                }
                root.draw(&Text::new(
                    line.clone(),
                    (x0 + 6, y),
                    ("sans-serif", 13).into_font().color(&BLACK),
                ))?;
            }
        }
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Named line series on axes fitted to the data (e.g. loss per epoch).
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    let text = have_font();
    let pts = series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (x0, x1, y0, y1) = pts.fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), (x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    let (x0, x1) = if x0.is_finite() && x1 > x0 {
        (x0, x1)
    } else {
        (x0.clamp(f64::MIN, 0.0), x0.max(0.0) + 1.0)
    };
    let (y0, y1) = if y0.is_finite() && y1 > y0 {
        (y0, y1)
    } else {
        (y0.clamp(f64::MIN, 0.0), y0.max(0.0) + 1.0)
    };
    let pad = (y1 - y0) * 0.05;
    let root = BitMapBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&root);
    b.margin(16)
        .x_label_area_size(if text { 40 } else { 8 })
        .y_label_area_size(if text { 60 } else { 8 });
    if text {
        b.caption(title, ("sans-serif", 22));
    }
    let mut chart = b.build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?;
    if text {
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()?;
    }
    for (i, (name, p)) in series.iter().enumerate() {
        let c = color(i);
        let s = chart.draw_series(LineSeries::new(p.iter().copied(), c.stroke_width(2)))?;
        if text {
            s.label(name.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
