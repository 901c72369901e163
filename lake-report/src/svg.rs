//! Charts as inline SVG, written by hand: bars (grouped, horizontal), lines and a donut, each with
//! a title, labelled axes with units, and a legend where there are series. Text is drawn in the
//! reader's own sans-serif font; nothing is fetched.

use std::fmt::Write as _;

/// Colours of the series, in order (readable on white, distinct for the common colour blindness).
const PALETTE: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
/// Room for the title, the axis labels and the legend.
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 70.0;

/// A named series of values, one per category.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

impl Series {
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            values,
        }
    }
}

/// What every chart states.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    pub title: &'a str,
    /// The horizontal axis's label, with its unit.
    pub x: &'a str,
    /// The vertical axis's label, with its unit.
    pub y: &'a str,
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round step for an axis that reaches `max`.
fn step(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn number(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The start of a chart's SVG: its size, a white ground and its title.
fn header(title: &str, height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"{t}\">\
         <rect width=\"{WIDTH}\" height=\"{height}\" fill=\"#fff\"/>\
         <text x=\"{cx}\" y=\"22\" text-anchor=\"middle\" class=\"title\">{t}</text>",
        t = escape(title),
        cx = WIDTH / 2.0,
    )
}

/// Opens the chart: its frame, title, axis labels and horizontal grid up to `max`; returns the
/// SVG so far and the value axis's top.
fn open(frame: &Frame, max: f64) -> (String, f64) {
    let mut s = header(frame.title, HEIGHT);
    let step = step(max);
    let top = (max / step).ceil().max(1.0) * step;
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let y = y0 - (v / top) * (y0 - y1);
        let _ = write!(
            s,
            "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" class=\"tick\">{}</text>",
            x0 - 6.0,
            y + 4.0,
            number(v)
        );
        v += step;
    }
    let _ = write!(
        s,
        "<line x1=\"{x0}\" x2=\"{x0}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"#333\"/>\
         <line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y0}\" y2=\"{y0}\" stroke=\"#333\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"axis\">{}</text>\
         <text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\" class=\"axis\">{}</text>",
        (x0 + x1) / 2.0,
        HEIGHT - 12.0,
        escape(frame.x),
        (y0 + y1) / 2.0,
        escape(frame.y),
    );
    (s, top)
}

/// A legend under the title, when there is more than one series.
fn legend(s: &mut String, series: &[Series]) {
    if series.len() < 2 {
        return;
    }
    let mut x = LEFT;
    for (i, serie) in series.iter().enumerate() {
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"legend\">{}</text>",
            HEIGHT - 36.0,
            PALETTE[i % PALETTE.len()],
            x + 14.0,
            HEIGHT - 27.0,
            escape(&serie.name)
        );
        x += 24.0 + 7.0 * serie.name.chars().count() as f64;
    }
}

/// Category labels under the axis, thinned out when there are many.
fn categories(s: &mut String, labels: &[String], center: impl Fn(usize) -> f64) {
    let every = (labels.len() / 12).max(1);
    for (i, label) in labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let short: String = label.chars().take(14).collect();
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"tick\">{}</text>",
            center(i),
            HEIGHT - BOTTOM + 16.0,
            escape(&short)
        );
    }
}

/// Grouped vertical bars: one group per category, one bar per series.
pub fn bars(frame: &Frame, labels: &[String], series: &[Series]) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let (mut s, top) = open(frame, max);
    let n = labels.len().max(1) as f64;
    let band = (WIDTH - LEFT - RIGHT) / n;
    let bar = band * 0.8 / series.len().max(1) as f64;
    let y0 = HEIGHT - BOTTOM;
    for (j, serie) in series.iter().enumerate() {
        for (i, v) in serie.values.iter().enumerate() {
            let h = v / top * (y0 - TOP);
            let x = LEFT + band * i as f64 + band * 0.1 + bar * j as f64;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                y0 - h,
                bar.max(1.0),
                PALETTE[j % PALETTE.len()],
                escape(&labels[i.min(labels.len().saturating_sub(1))]),
                number(*v)
            );
        }
    }
    categories(&mut s, labels, |i| LEFT + band * (i as f64 + 0.5));
    legend(&mut s, series);
    s.push_str("</svg>");
    s
}

/// Lines over ordered categories (days, hours), one per series.
pub fn lines(frame: &Frame, labels: &[String], series: &[Series]) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let (mut s, top) = open(frame, max);
    let n = labels.len().max(2) as f64;
    let dx = (WIDTH - LEFT - RIGHT) / (n - 1.0);
    let y0 = HEIGHT - BOTTOM;
    for (j, serie) in series.iter().enumerate() {
        let points: Vec<String> = serie
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + dx * i as f64,
                    y0 - v / top * (y0 - TOP)
                )
            })
            .collect();
        let colour = PALETTE[j % PALETTE.len()];
        let _ = write!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            points.join(" ")
        );
        for p in &points {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(
                s,
                "<circle cx=\"{x}\" cy=\"{y}\" r=\"2.5\" fill=\"{colour}\"/>"
            );
        }
    }
    categories(&mut s, labels, |i| LEFT + dx * i as f64);
    legend(&mut s, series);
    s.push_str("</svg>");
    s
}

/// Horizontal bars, for ranked names (top songs): longest first, the label beside each bar.
pub fn ranking(frame: &Frame, labels: &[String], values: &[f64]) -> String {
    let max = values.iter().copied().fold(0.0, f64::max).max(1.0);
    let rows = labels.len().max(1) as f64;
    // at least 16 px a bar: a long ranking makes a taller chart
    let height = HEIGHT.max(TOP + 40.0 + 16.0 * rows);
    let mut s = header(frame.title, height);
    let (left, right) = (250.0, WIDTH - 60.0);
    let band = (height - TOP - 40.0) / rows;
    for (i, (label, v)) in labels.iter().zip(values).enumerate() {
        let y = TOP + band * i as f64;
        let w = v / max * (right - left);
        let short: String = label.chars().take(36).collect();
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" class=\"tick\">{}</text>\
             <rect x=\"{left}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">{}</text>",
            left - 6.0,
            y + band * 0.6,
            escape(&short),
            y + band * 0.15,
            band * 0.7,
            PALETTE[0],
            left + w + 4.0,
            y + band * 0.6,
            number(*v)
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{left}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#333\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"axis\">{}</text>\
         <text x=\"12\" y=\"{:.1}\" class=\"axis\">{}</text></svg>",
        height - 40.0,
        (left + right) / 2.0,
        height - 14.0,
        escape(frame.x),
        TOP - 6.0,
        escape(frame.y)
    );
    s
}

/// A donut of shares, with a legend giving each part's count.
pub fn donut(title: &str, parts: &[(String, f64)]) -> String {
    let total: f64 = parts.iter().map(|(_, v)| v).sum::<f64>().max(1.0);
    let mut s = header(title, HEIGHT);
    let (cx, cy, r) = (200.0, 175.0, 110.0);
    let circumference = 2.0 * std::f64::consts::PI * r;
    let mut offset = 0.0;
    for (i, (name, v)) in parts.iter().enumerate() {
        let len = v / total * circumference;
        let colour = PALETTE[i % PALETTE.len()];
        let _ = write!(
            s,
            "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"{r}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"50\" \
             stroke-dasharray=\"{len:.2} {:.2}\" stroke-dashoffset=\"{:.2}\" transform=\"rotate(-90 {cx} {cy})\"/>\
             <rect x=\"380\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"398\" y=\"{:.1}\" class=\"legend\">{}: {} ({:.0}%)</text>",
            circumference - len,
            -offset,
            90.0 + 24.0 * i as f64,
            100.0 + 24.0 * i as f64,
            escape(name),
            number(*v),
            v / total * 100.0
        );
        offset += len;
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_get_round_steps_and_numbers_stay_short() {
        assert_eq!(step(97.0), 20.0);
        assert_eq!(step(1.0), 0.2);
        assert_eq!(step(12.0), 2.5);
        assert_eq!(number(12_345.0), "12k");
        assert_eq!(number(2_500_000.0), "2.5M");
        assert_eq!(number(7.0), "7");
    }

    #[test]
    fn a_chart_has_its_title_axis_labels_and_a_legend_for_several_series() {
        let frame = Frame {
            title: "Plays by hour",
            x: "hour of day (UTC)",
            y: "plays",
        };
        let labels: Vec<String> = (0..3).map(|h| h.to_string()).collect();
        let svg = bars(
            &frame,
            &labels,
            &[
                Series::new("free", vec![1.0, 2.0, 3.0]),
                Series::new("paid", vec![3.0, 2.0, 1.0]),
            ],
        );
        for part in [
            "Plays by hour",
            "hour of day (UTC)",
            ">plays<",
            ">free<",
            ">paid<",
        ] {
            assert!(svg.contains(part), "{part}");
        }
        assert_eq!(
            svg.matches("<rect x=").count(),
            6 + 2,
            "six bars, two legend keys"
        );
        assert!(escape("a<b & \"c\"") == "a&lt;b &amp; &quot;c&quot;");
    }
}
