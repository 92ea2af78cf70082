//! `--plot FILE.png`: the delivery latency drawn by the tool (plotters, bitmap backend).
//!
//! Top: latency over time — p50, p99 and max of each interval of *send* time (drawn at
//! its middle), against seconds since the publish started. Bottom: latency by percentile, on a "nines" axis
//! (90%, 99%, 99.9%, … equally spaced) up to what the sample count can resolve. Both
//! latency axes are logarithmic (ms), so a tail and a median stay readable together.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (`assets/`, licence beside it),
//! registered once through plotters' `ab_glyph` feature: no fontconfig or system font is
//! needed.

use super::CiFacts;
use crate::error::{Error, Result};
use crate::stats::Latency;
use crate::timeline::TimePoint;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::OnceLock;

/// The embedded font (Bitstream Vera licence with DejaVu changes, public domain).
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family name the charts ask for.
const FAMILY: &str = "sans-serif";
/// Image size, pixels.
const SIZE: (u32, u32) = (1200, 900);
/// Points on the percentile curve.
const CURVE_POINTS: u32 = 400;
/// Most nines the percentile axis shows (99.999%).
const MAX_NINES: f64 = 5.0;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
/// A line of the time chart: its name, colour and value.
type Line = (&'static str, RGBColor, fn(&TimePoint) -> u64);

/// Draws both charts into `path` (PNG).
pub fn draw(path: &Path, facts: &CiFacts) -> Result<()> {
    register_font()?;
    let fail = |e: String| Error::Export(format!("drawing {}: {e}", path.display()));
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    over_time(&top, &facts.timeline, facts.origin_us).map_err(fail)?;
    by_percentile(&bottom, &facts.latency).map_err(fail)?;
    root.present().map_err(|e| fail(e.to_string()))
}

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Export(
            "the embedded font could not be loaded".into(),
        ))
    }
}

/// ms from µs, floored so the log axis never sees 0.
fn ms(us: u64) -> f64 {
    (us as f64 / 1e3).max(0.001)
}

/// `1`, `2`, `5`, `10`, `20`, … (other key points stay unlabelled on the log axis).
fn log_label(v: f64) -> String {
    let mantissa = v / 10f64.powf(v.log10().floor());
    let nice = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 0.01);
    if nice { format!("{v}") } else { String::new() }
}

/// A log axis range around `lo..hi` ms, with room above for the legend.
fn log_range(lo: f64, hi: f64) -> std::ops::Range<f64> {
    (lo.max(0.001) * 0.8)..(hi.max(lo * 2.0).max(0.01) * 2.5)
}

/// A chart of latency (log ms) against a linear x axis.
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// The x axis of a chart: range, description, label text of a value.
type XAxis<'f> = (std::ops::Range<f64>, &'f str, &'f dyn Fn(&f64) -> String);

/// Result of a drawing step; the message says what failed.
type Drawn<T = ()> = std::result::Result<T, String>;

/// The frame both charts share: caption, margins, axes, grid and labels.
fn chart<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    x: XAxis,
    y: std::ops::Range<f64>,
) -> Drawn<Chart<'a, 'b>> {
    let (x_range, x_desc, x_format) = x;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, 22))
        .margin(12)
        .margin_right(45)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(x_range, y.log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_label_formatter(x_format)
        .y_desc("latency, ms (log)")
        .label_style((FAMILY, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .y_labels(12)
        .y_label_formatter(&|v| log_label(*v))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

fn over_time(area: &Area, points: &[TimePoint], origin_us: u64) -> Drawn {
    // Each point at the middle of its interval.
    let x = |p: &TimePoint| (p.start_us / 2 + p.end_us / 2).saturating_sub(origin_us) as f64 / 1e6;
    let x_max = points.iter().map(x).fold(1.0, f64::max) * 1.02;
    let lo = points.iter().map(|p| ms(p.p50_us)).fold(f64::MAX, f64::min);
    let hi = points.iter().map(|p| ms(p.max_us)).fold(0.0, f64::max);
    let caption = "delivery latency over time (per interval of send time)";
    let seconds = |v: &f64| format!("{v:.1}");
    let x_axis = (
        0.0..x_max,
        "seconds since the publish started",
        &seconds as _,
    );
    let mut chart = chart(area, caption, x_axis, log_range(lo, hi))?;
    let lines: [Line; 3] = [
        ("max", RGBColor(150, 150, 150), |p| p.max_us),
        ("p99", RED, |p| p.p99_us),
        ("p50", BLUE, |p| p.p50_us),
    ];
    for (name, color, value) in lines {
        let series = points.iter().map(|p| (x(p), ms(value(p))));
        chart
            .draw_series(LineSeries::new(series, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    legend(&mut chart)
}

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Drawn {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Nines the sample count can resolve: 2 (99%) at least, [`MAX_NINES`] at most.
fn nines_for(count: u64) -> f64 {
    (count.max(1) as f64).log10().floor().clamp(2.0, MAX_NINES)
}

/// `90%`, `99%`, `99.9%` for 1, 2, 3 nines.
fn percent_label(nines: f64) -> String {
    let q = 100.0 * (1.0 - 10f64.powf(-nines));
    let decimals = (nines.round() as i32 - 2).max(0) as usize;
    format!("{q:.decimals$}%")
}

/// Latency (ms) at evenly spaced nines from 0 to `nines`.
fn percentile_curve(latency: &Latency, nines: f64) -> Vec<(f64, f64)> {
    let h = latency.histogram();
    (0..=CURVE_POINTS)
        .map(|i| nines * f64::from(i) / f64::from(CURVE_POINTS))
        .map(|x| (x, ms(h.value_at_quantile(1.0 - 10f64.powf(-x)))))
        .collect()
}

fn by_percentile(area: &Area, latency: &Latency) -> Drawn {
    let nines = nines_for(latency.count());
    let curve = percentile_curve(latency, nines);
    let lo = curve.first().map_or(0.001, |p| p.1);
    let hi = curve.last().map_or(1.0, |p| p.1);
    let caption = format!("delivery latency by percentile (n = {})", latency.count());
    // Labels at whole nines only: 0%, 90%, 99%, 99.9%, …
    let label = |x: &f64| {
        let whole = (x - x.round()).abs() < 1e-9;
        if whole {
            percent_label(*x)
        } else {
            String::new()
        }
    };
    let x_axis = (0.0..nines, "percentile", &label as _);
    let mut chart = chart(area, &caption, x_axis, log_range(lo, hi))?;
    chart
        .draw_series(LineSeries::new(curve, BLUE.stroke_width(2)))
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels_and_reach() {
        assert_eq!(percent_label(0.0), "0%");
        assert_eq!(percent_label(1.0), "90%");
        assert_eq!(percent_label(2.0), "99%");
        assert_eq!(percent_label(3.0), "99.9%");
        assert_eq!(nines_for(50), 2.0);
        assert_eq!(nines_for(12_345), 4.0);
        assert_eq!(nines_for(u64::MAX), MAX_NINES);
    }
}
