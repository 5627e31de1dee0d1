//! Durations on the command line: "100ms", "10s", "1.5s", "500us" (or
//! "500µs"), "2m", "1h", "1d"; a bare number ("0.5", "1e3") is seconds.

use std::time::Duration;

/// The longest duration accepted: anything longer is a typo, and would
/// overflow the nanosecond clocks it is added to.
pub const MAX: Duration = Duration::from_secs(365 * 86_400);

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = number_len(t);
    let (num, unit) = (&t[..split], t[split..].trim());
    if num.is_empty() {
        return Err(format!("not a duration: '{s}' (e.g. 100ms, 10s)"));
    }
    let v: f64 = num
        .parse()
        .map_err(|_| format!("not a duration: '{s}' (e.g. 100ms, 10s)"))?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" | "μs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => {
            return Err(format!(
                "unknown unit '{unit}' in '{s}' (use ns, us, ms, s, m, h or d)"
            ))
        }
    };
    let secs = v * scale;
    if !(secs >= 0.0 && secs.is_finite()) {
        return Err(format!("duration must be a non-negative number: '{s}'"));
    }
    if secs > MAX.as_secs_f64() {
        return Err(format!(
            "duration '{s}' is longer than the 365 days allowed"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Length of the leading decimal number (sign, digits, point, exponent).
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    // An exponent only when digits follow it ("1e3"; "1e" is no number).
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    i
}

/// A finite number (clap value parser for thresholds and other floats:
/// "nan" or "inf" would silently disable what they control).
pub fn parse_finite(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("not a number: '{s}'"))?;
    if !v.is_finite() {
        return Err(format!("must be a finite number, got '{s}'"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reliability_durations() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("100ms"), Duration::from_millis(100));
        assert_eq!(ok("500us"), Duration::from_micros(500));
        assert_eq!(ok("500µs"), Duration::from_micros(500));
        assert_eq!(ok("1e3"), Duration::from_secs(1000));
        assert_eq!(ok("1.5e3ms"), Duration::from_millis(1500));
        assert_eq!(ok(" 2m "), Duration::from_secs(120));
        assert_eq!(ok("0"), Duration::ZERO);
        for bad in [
            "", "ms", "1e", "1x", "-1s", "nan", "inf", "1e12", "1e300s", "400d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} accepted");
        }
        assert!(parse_finite("nan").is_err() && parse_finite("inf").is_err());
        assert_eq!(parse_finite("0.5"), Ok(0.5));
    }
}
