//! The geometry of the portal's small inline-SVG charts, drawn by the
//! `chart` macro of `signals_macros.html`.

use super::{ms, usd};
use serde::Serialize;

/// One series of a chart: its legend label, CSS class and values (a gap
/// where `None`).
pub(super) struct Plot {
    pub(super) label: String,
    pub(super) class: &'static str,
    pub(super) values: Vec<Option<f64>>,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum ChartKind {
    Line,
    Bar,
}

/// A chart as the `chart` macro draws it: the SVG box, axis ticks, one
/// path (and dots) per line series or the bars of a bar series, and a text
/// summary for screen readers.
#[derive(Serialize)]
pub(super) struct Chart {
    id: String,
    title: String,
    width: f64,
    height: f64,
    /// x of the plot's left edge (the y axis labels end there).
    left: f64,
    right: f64,
    /// y of the x axis.
    bottom: f64,
    /// Baseline of the x axis labels.
    label_y: f64,
    y_ticks: Vec<YTick>,
    x_ticks: Vec<XTick>,
    paths: Vec<LinePath>,
    dots: Vec<Dot>,
    bars: Vec<Bar>,
    legend: Vec<LegendItem>,
    /// Whether any value is non-zero ("None in this range" otherwise).
    has_data: bool,
    summary: String,
}

/// A grid line of the value axis.
#[derive(Serialize)]
struct YTick {
    y: f64,
    label: String,
}

/// A label of the time axis.
#[derive(Serialize)]
struct XTick {
    x: f64,
    label: String,
}

/// One line series, broken at gaps (`d` is an SVG path).
#[derive(Serialize)]
struct LinePath {
    d: String,
    class: &'static str,
}

/// A non-zero point of a line, with its value as a tooltip.
#[derive(Serialize)]
struct Dot {
    x: f64,
    y: f64,
    class: &'static str,
    title: String,
}

/// A bar, with its value as a tooltip.
#[derive(Serialize)]
struct Bar {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    class: &'static str,
    title: String,
}

#[derive(Serialize)]
struct LegendItem {
    label: String,
    class: &'static str,
}

const CHART_WIDTH: f64 = 520.0;
const CHART_HEIGHT: f64 = 170.0;
const PAD_LEFT: f64 = 62.0;
const PAD_RIGHT: f64 = 8.0;
const PAD_TOP: f64 = 10.0;
const PAD_BOTTOM: f64 = 22.0;

pub(super) fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The geometry of a small chart over `labels` (one per point): axes
/// ticks, a path (lines) or rectangles (bars, first series only) per
/// series, and a text summary for screen readers. `format` prints values.
pub(super) fn chart(
    id: &str,
    title: &str,
    kind: ChartKind,
    labels: &[String],
    plots: &[Plot],
    format: fn(f64) -> String,
) -> Chart {
    let plot_w = CHART_WIDTH - PAD_LEFT - PAD_RIGHT;
    let plot_h = CHART_HEIGHT - PAD_TOP - PAD_BOTTOM;
    let points = labels.len().max(1);
    let max = plots.iter().flat_map(|p| p.values.iter().flatten()).fold(0.0_f64, |a, b| a.max(*b));
    let has_data = plots.iter().any(|p| p.values.iter().flatten().any(|v| *v != 0.0));
    let top = if max > 0.0 { max } else { 1.0 };
    let slot = plot_w / points as f64;
    let x_of = |i: usize| PAD_LEFT + (i as f64 + 0.5) * slot;
    let y_of = |v: f64| PAD_TOP + plot_h - (v.max(0.0) / top) * plot_h;

    let y_ticks: Vec<YTick> =
        [0.0, 0.5, 1.0].iter().map(|f| YTick { y: round1(y_of(top * f)), label: format(top * f) }).collect();
    // Five labels at most along the time axis.
    let every = points.div_ceil(5).max(1);
    let x_ticks: Vec<XTick> = labels
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, label)| XTick { x: round1(x_of(i)), label: label.clone() })
        .collect();

    let mut paths = Vec::new();
    let mut dots = Vec::new();
    let mut bars = Vec::new();
    for (n, plot) in plots.iter().enumerate() {
        if kind == ChartKind::Bar && n == 0 {
            let width = (slot * 0.7).max(1.0);
            for (i, value) in plot.values.iter().enumerate() {
                let Some(v) = value.filter(|v| *v > 0.0) else { continue };
                let y = y_of(v);
                bars.push(Bar {
                    x: round1(x_of(i) - width / 2.0),
                    y: round1(y),
                    w: round1(width),
                    h: round1(PAD_TOP + plot_h - y).max(0.5),
                    class: plot.class,
                    title: format!("{}: {}", labels.get(i).map_or("", String::as_str), format(v)),
                });
            }
            continue;
        }
        // Lines break at gaps; each point also gets a dot, so a lone point shows.
        let mut d = String::new();
        let mut pen_down = false;
        for (i, value) in plot.values.iter().enumerate() {
            match value {
                Some(v) => {
                    let (x, y) = (round1(x_of(i)), round1(y_of(*v)));
                    d.push_str(&format!("{}{x} {y} ", if pen_down { "L" } else { "M" }));
                    pen_down = true;
                    if *v != 0.0 {
                        dots.push(Dot {
                            x,
                            y,
                            class: plot.class,
                            title: format!(
                                "{} {}: {}",
                                plot.label,
                                labels.get(i).map_or("", String::as_str),
                                format(*v)
                            ),
                        });
                    }
                }
                None => pen_down = false,
            }
        }
        paths.push(LinePath { d: d.trim_end().to_string(), class: plot.class });
    }
    let summary: Vec<String> = plots
        .iter()
        .map(|p| {
            let values: Vec<f64> = p.values.iter().flatten().copied().collect();
            let peak = values.iter().copied().fold(0.0_f64, f64::max);
            format!("{} peaks at {}", p.label, format(peak))
        })
        .collect();
    Chart {
        id: id.to_string(),
        title: title.to_string(),
        width: CHART_WIDTH,
        height: CHART_HEIGHT,
        left: PAD_LEFT,
        right: CHART_WIDTH - PAD_RIGHT,
        bottom: PAD_TOP + plot_h,
        label_y: CHART_HEIGHT - 6.0,
        y_ticks,
        x_ticks,
        paths,
        dots,
        bars,
        legend: plots.iter().map(|p| LegendItem { label: p.label.clone(), class: p.class }).collect(),
        has_data,
        summary: format!("{title}: {}.", summary.join("; ")),
    }
}

pub(super) fn usd_axis(v: f64) -> String {
    usd(v)
}

pub(super) fn ms_axis(v: f64) -> String {
    ms(Some(v))
}

#[cfg(test)]
mod tests {
    use super::super::count;
    use super::*;

    #[test]
    fn charts_scale_to_the_largest_value() {
        let labels: Vec<String> = (0..4).map(|i| format!("{i:02}:00")).collect();
        let plots = [Plot {
            label: "requests".into(),
            class: "s-requests",
            values: vec![Some(0.0), Some(2.0), None, Some(4.0)],
        }];
        let bars = chart("c", "Requests", ChartKind::Bar, &labels, &plots, count);
        assert_eq!(bars.bars.len(), 2, "zero and missing steps draw no bar");
        assert_eq!(bars.y_ticks[2].label, "4");
        let line = chart("c", "Requests", ChartKind::Line, &labels, &plots, count);
        let d = &line.paths[0].d;
        assert_eq!(d.matches('M').count(), 2, "a gap starts a new segment: {d}");
        let empty = chart("c", "Requests", ChartKind::Bar, &labels, &[], count);
        assert!(!empty.has_data);
    }
}
