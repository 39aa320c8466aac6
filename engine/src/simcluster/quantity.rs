//! Kubernetes quantities as fixtures write them: CPU `500m` / `2` / `0.25`, memory and storage
//! `512Mi` / `4Gi` / `1G` / `1048576`. Kept as integers (millicores, MiB) so thresholds compare
//! exactly.

/// CPU in millicores: `250m`, `2`, `1.5`.
pub fn parse_cpu(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Some(milli) = text.strip_suffix('m') {
        return milli
            .parse::<u64>()
            .map_err(|_| format!("`{text}` is not a CPU quantity (e.g. 250m, 2, 0.5)"));
    }
    decimal_times(text, 1_000)
        .ok_or_else(|| format!("`{text}` is not a CPU quantity (e.g. 250m, 2, 0.5)"))
}

/// Memory or storage in MiB, rounded up: `512Mi`, `4Gi`, `1G`, `2Ti`, or bytes.
pub fn parse_bytes_mib(text: &str) -> Result<u64, String> {
    let text = text.trim();
    const UNITS: [(&str, u128); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, unit) = UNITS
        .iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|n| (n, *unit)))
        .unwrap_or((text, 1));
    let error = || format!("`{text}` is not a memory quantity (e.g. 512Mi, 4Gi, 1G)");
    // Exact: the number with up to three decimals, times the unit, in thousandths of bytes.
    let thousandths = decimal_times(number, 1_000).ok_or_else(error)?;
    let bytes_milli = u128::from(thousandths)
        .checked_mul(unit)
        .ok_or_else(error)?;
    let mib_milli: u128 = 1_000 << 20;
    u64::try_from(bytes_milli.div_ceil(mib_milli)).map_err(|_| error())
}

/// `text` (digits, optionally `.` and up to three more) times `scale` (1 000), exactly.
fn decimal_times(text: &str, scale: u64) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty()
        || fraction.len() > 3
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut frac: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    for _ in fraction.len()..3 {
        frac *= 10;
    }
    whole.checked_mul(scale)?.checked_add(frac * scale / 1_000)
}

/// Millicores as Kubernetes writes them back.
pub fn format_cpu(millicores: u64) -> String {
    if millicores.is_multiple_of(1_000) {
        (millicores / 1_000).to_string()
    } else {
        format!("{millicores}m")
    }
}

/// MiB as Kubernetes writes them back.
pub fn format_mib(mib: u64) -> String {
    if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{}Gi", mib / 1024)
    } else {
        format!("{mib}Mi")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities() {
        for (text, milli) in [
            ("250m", 250),
            ("2", 2_000),
            ("0.5", 500),
            (".1", 100),
            ("1.25", 1_250),
            ("0", 0),
        ] {
            assert_eq!(parse_cpu(text), Ok(milli), "{text}");
        }
        for bad in ["", "m", "1.2345", "-1", "2 cores", "1e3", "1.5m"] {
            assert!(parse_cpu(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(format_cpu(2_000), "2");
        assert_eq!(format_cpu(250), "250m");
    }

    #[test]
    fn memory_quantities_round_up_to_mib() {
        for (text, mib) in [
            ("512Mi", 512),
            ("4Gi", 4_096),
            ("1Ti", 1 << 20),
            ("1024Ki", 1),
            ("1Ki", 1),
            ("1048576", 1),
            ("1048577", 2),
            ("1G", 954),
            ("0.5Gi", 512),
            ("0", 0),
        ] {
            assert_eq!(parse_bytes_mib(text), Ok(mib), "{text}");
        }
        for bad in ["", "Gi", "4GB", "-1Gi", "1.2345Gi"] {
            assert!(parse_bytes_mib(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(format_mib(4_096), "4Gi");
        assert_eq!(format_mib(300), "300Mi");
    }
}
