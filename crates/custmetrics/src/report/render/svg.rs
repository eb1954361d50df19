//! A small SVG layer for the HTML report: line charts (with optional confidence bands) and
//! horizontal bar charts. Hand-written because the charts are simple and the output must be
//! deterministic, compact and free of scripts (plotters emits ~17 KB per chart and has no
//! tooltips; charting crates that render to JavaScript load it from a CDN).

use std::fmt::Write as _;

use crate::report::view::Line;

/// Escapes text for HTML and SVG content and attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A palette that stays distinguishable for colour-blind readers (Okabe & Ito 2008).
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
];

const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).abs().max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(mag * 10.0);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 && out.len() < 12 {
        out.push(t);
        t += step;
    }
    out
}

/// A line chart over categorical x labels.
pub fn line_chart(
    title: &str,
    x_labels: &[String],
    lines: &[Line],
    y_range: Option<(f64, f64)>,
    y_fmt: &dyn Fn(f64) -> String,
) -> String {
    let n = x_labels.len().max(1);
    let all = lines.iter().flat_map(|l| {
        l.values.iter().flatten().copied().chain(
            l.band
                .iter()
                .flatten()
                .flatten()
                .flat_map(|(a, b)| [*a, *b]),
        )
    });
    let (mut lo, mut hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if let Some((a, b)) = y_range {
        lo = a;
        hi = b;
    }
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let x = |i: usize| {
        LEFT + (W - LEFT - RIGHT)
            * if n > 1 {
                i as f64 / (n - 1) as f64
            } else {
                0.5
            }
    };
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (v - lo) / (hi - lo));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure><svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    for t in nice_ticks(lo, hi) {
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="tick" text-anchor="end">{label}</text>"##,
            x2 = W - RIGHT,
            yy = y(t),
            tx = LEFT - 6.0,
            ty = y(t) + 4.0,
            label = esc(&y_fmt(t))
        );
    }
    let every = n.div_ceil(12).max(1);
    for (i, label) in x_labels.iter().enumerate() {
        // The last label only when it does not collide with the previous one.
        if i % every == 0 || (i + 1 == n && i % every >= every.div_ceil(2)) {
            let _ = write!(
                s,
                r#"<text x="{xx:.1}" y="{yy}" class="tick" text-anchor="middle">{l}</text>"#,
                xx = x(i),
                yy = H - BOTTOM + 16.0,
                l = esc(label)
            );
        }
    }
    for (k, line) in lines.iter().enumerate() {
        let color = PALETTE.get(k % PALETTE.len()).copied().unwrap_or("#000");
        if let Some(band) = &line.band {
            let pts: Vec<(usize, f64, f64)> = band
                .iter()
                .enumerate()
                .filter_map(|(i, b)| b.map(|(a, c)| (i, a, c)))
                .collect();
            if pts.len() > 1 {
                let mut d = String::new();
                for (j, (i, _, hi_v)) in pts.iter().enumerate() {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if j == 0 { "M" } else { "L" },
                        x(*i),
                        y(hi_v.min(hi).max(lo))
                    );
                }
                for (i, lo_v, _) in pts.iter().rev() {
                    let _ = write!(d, "L{:.1},{:.1} ", x(*i), y(lo_v.min(hi).max(lo)));
                }
                let _ = write!(
                    s,
                    r#"<path d="{}Z" fill="{color}" opacity="0.15" class="band"/>"#,
                    d.trim_end()
                );
            }
        }
        let mut d = String::new();
        let mut pen_down = false;
        for (i, v) in line.values.iter().enumerate() {
            match v {
                Some(v) => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        x(i),
                        y(*v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(
            s,
            r#"<path d="{}" fill="none" stroke="{color}" stroke-width="2" class="series"><title>{}</title></path>"#,
            d.trim_end(),
            esc(&line.name)
        );
        for (i, v) in line.values.iter().enumerate() {
            if let (Some(v), Some(label)) = (v, x_labels.get(i)) {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"><title>{}: {} {}</title></circle>"#,
                    x(i),
                    y(*v),
                    esc(&line.name),
                    esc(label),
                    esc(&y_fmt(*v))
                );
            }
        }
    }
    s.push_str("</svg>");
    if lines.len() > 1 {
        s.push_str(r#"<figcaption class="legend">"#);
        for (k, line) in lines.iter().enumerate() {
            let color = PALETTE.get(k % PALETTE.len()).copied().unwrap_or("#000");
            let _ = write!(
                s,
                r#"<span><i style="background:{color}"></i>{}</span>"#,
                esc(&line.name)
            );
        }
        s.push_str("</figcaption>");
    }
    s.push_str("</figure>");
    s
}

/// A horizontal bar chart.
pub fn bar_chart(title: &str, bars: &[(String, f64)], fmt: &dyn Fn(f64) -> String) -> String {
    let row = 24.0;
    let h = TOP + row * bars.len() as f64 + 8.0;
    let label_w = 170.0;
    let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-12);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure><svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let yy = TOP + row * i as f64;
        let w = (W - label_w - 90.0) * (v / max).max(0.0);
        let _ = write!(
            s,
            r#"<text x="{lx}" y="{ty:.1}" class="tick" text-anchor="end">{l}</text><rect x="{label_w}" y="{yy:.1}" width="{w:.1}" height="{bh}" fill="{c}" class="bar"><title>{l}: {v}</title></rect><text x="{vx:.1}" y="{ty:.1}" class="tick">{v}</text>"#,
            lx = label_w - 8.0,
            ty = yy + 15.0,
            l = esc(label),
            bh = row - 6.0,
            c = PALETTE.first().copied().unwrap_or("#000"),
            v = esc(&fmt(*v)),
            vx = label_w + w + 6.0
        );
    }
    s.push_str("</svg></figure>");
    s
}

/// Background colour for a rate in [0, 1]: a sequential blue ramp (light = low).
pub fn heat(rate: f64) -> String {
    let t = rate.clamp(0.0, 1.0).sqrt();
    let (r0, g0, b0) = (247.0, 251.0, 255.0);
    let (r1, g1, b1) = (8.0, 69.0, 148.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(r0, r1), mix(g0, g1), mix(b0, b1))
}

/// Text colour readable on [`heat`].
pub fn heat_text(rate: f64) -> &'static str {
    if rate.clamp(0.0, 1.0).sqrt() > 0.55 {
        "#fff"
    } else {
        "#111"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn charts_are_svg_with_escaped_labels() {
        let c = line_chart(
            "t<1>",
            &["a&b".into(), "c".into()],
            &[Line {
                name: "s".into(),
                values: vec![Some(0.2), Some(0.4)],
                band: Some(vec![Some((0.1, 0.3)), Some((0.3, 0.5))]),
            }],
            Some((0.0, 1.0)),
            &|v| format!("{v:.1}"),
        );
        assert!(
            c.contains("<svg")
                && c.contains("a&amp;b")
                && c.contains("t&lt;1&gt;")
                && c.contains("class=\"band\"")
        );
        assert!(!c.contains("NaN"));
        let b = bar_chart("bars", &[("x".into(), 3.0), ("y".into(), 0.0)], &|v| {
            format!("{v}")
        });
        assert_eq!(b.matches("<rect").count(), 2);
        let ticks = nice_ticks(0.0, 1.0);
        assert_eq!(ticks.len(), 6);
        assert!((ticks[5] - 1.0).abs() < 1e-9);
    }
}
