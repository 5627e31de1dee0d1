//! Small shared helpers.

pub mod duration;
pub mod fuzz;
pub mod output;

use std::path::Path;

use anyhow::Result;

/// Write a file so that readers see either the old content or the new,
/// never half; symlinks are followed and devices written through (see
/// [`output`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    output::write_output(path, bytes)
}

/// Packet time (ns since the Unix epoch) as ISO 8601 UTC with microseconds,
/// e.g. 2017-07-03T12:08:01.123456+00:00 (the form Suricata's EVE uses).
pub fn iso8601_us(ts_ns: u64) -> String {
    let secs = (ts_ns / 1_000_000_000) as i64;
    let us = (ts_ns % 1_000_000_000) / 1000;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{us:06}+00:00",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// An error and its causes on one line, each text once: a cause whose
/// text an outer message already quotes (`"{path}: {source}"` with the
/// source also in the chain) is not printed again.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for c in e.chain() {
        let m = c.to_string();
        if out.contains(&m) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&m);
    }
    out
}
