//! The latency histogram for other tools: HdrHistogram's V2 binary format (`--hdr`; read
//! back with [`read_v2`], any HdrHistogram library, or `hdrhistogram`'s `Deserializer`)
//! and its percentile distribution table (`--percentiles`; the text the HdrHistogram
//! plotter takes), values in ms.

use crate::error::{Error, Result};
use crate::stats::Latency;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use std::fmt::Write as _;
use std::path::Path;

/// Ticks per half distance to 100% in the percentile table (HdrHistogram's default: 5).
const TICKS_PER_HALF: u32 = 5;

/// Writes `latency` (µs) to `path` in the V2 format, uncompressed.
pub fn write_v2(path: &Path, latency: &Latency) -> Result<()> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(latency.histogram(), &mut bytes)
        .map_err(|e| {
            Error::Export(format!(
                "encoding the histogram for {}: {e:?}",
                path.display()
            ))
        })?;
    std::fs::write(path, bytes).map_err(Error::io(format!("writing {}", path.display())))
}

/// Reads a histogram written by [`write_v2`].
pub fn read_v2(path: &Path) -> Result<Histogram<u64>> {
    let bytes = std::fs::read(path).map_err(Error::io(format!("reading {}", path.display())))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| Error::Export(format!("{} is not a V2 histogram: {e:?}", path.display())))
}

/// The percentile distribution in HdrHistogram's text layout, µs shown as ms.
pub fn percentile_table(latency: &Latency) -> String {
    let h = latency.histogram();
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(TICKS_PER_HALF) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let ms = v.value_iterated_to() as f64 / 1e3;
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{ms:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{ms:12.3} {q:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / 1e3,
        h.stdev() / 1e3
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / 1e3,
        h.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_round_trip_keeps_every_count() {
        let mut l = Latency::new();
        (1..=5_000).for_each(|us| l.record(us * 3));
        let path = std::env::temp_dir().join(format!("load-hdr-{}.hdr", std::process::id()));
        write_v2(&path, &l).unwrap();
        let back = read_v2(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(back.len(), 5_000);
        assert_eq!(
            back.value_at_quantile(0.99),
            l.histogram().value_at_quantile(0.99)
        );
        assert_eq!(back, *l.histogram());
    }

    #[test]
    fn table_runs_from_the_minimum_to_the_total() {
        let mut l = Latency::new();
        (1..=1_000).for_each(|us| l.record(us));
        let t = percentile_table(&l);
        let rows: Vec<&str> = t.lines().filter(|r| r.starts_with(' ')).skip(1).collect();
        assert!(
            rows[0].trim_start().starts_with("0.001 0.000000000000"),
            "{t}"
        );
        assert!(
            rows.last().unwrap().contains("1.000000000000       1000"),
            "{t}"
        );
        assert!(t.contains("Total count    =         1000]"), "{t}");
    }
}
