//! A self-contained HTML report of a model: inline SVG charts, no scripts, no network.

use std::fmt::Write;

use super::model::{KPoint, Model};

/// What the report shows, beyond the model itself.
pub struct ReportInput<'a> {
    pub name: &'a str,
    pub version: i32,
    pub model: &'a Model,
    pub curve: &'a [KPoint],
    pub n_rows: i64,
    pub created_at: &'a str,
    /// Clusters described by columns of a source (rfm_profile(model, source, columns)).
    pub columns: &'a [ProfileRow],
}

/// One cluster's statistics of one source column: mean and median (numeric), or the most
/// frequent levels and their shares (categorical).
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileRow {
    pub cluster: i32,
    pub label: String,
    pub column: String,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub levels: Vec<Option<String>>,
    pub shares: Vec<f64>,
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const W: f64 = 540.0;
const H: f64 = 260.0;
const PAD_L: f64 = 64.0;
const PAD_R: f64 = 16.0;
const PAD_T: f64 = 16.0;
const PAD_B: f64 = 40.0;
const PALETTE: [&str; 10] = ["#2b6cb0", "#dd6b20", "#38a169", "#e53e3e", "#805ad5", "#d69e2e", "#319795", "#b83280", "#718096", "#2c5282"];

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A line chart of (x, y) points; `mark` highlights one point (the chosen k).
fn line_chart(id: &str, title: &str, x_label: &str, points: &[(f64, f64)], mark: Option<usize>) -> String {
    let mut s = String::new();
    let _ = write!(s, "<figure class=\"chart\" data-chart=\"{id}\"><figcaption>{}</figcaption>", escape(title));
    let _ = write!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">");
    let finite: Vec<(f64, f64)> = points.iter().copied().filter(|(_, y)| y.is_finite()).collect();
    if finite.is_empty() {
        s.push_str("<text x=\"20\" y=\"40\">no data</text></svg></figure>");
        return s;
    }
    let (x0, x1) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut y0, mut y1) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if y1 - y0 < 1e-12 {
        y0 -= 1.0;
        y1 += 1.0;
    }
    let pad = (y1 - y0) * 0.08;
    let (y0, y1) = (y0 - pad, y1 + pad);
    let px = |x: f64| if x1 > x0 { PAD_L + (x - x0) / (x1 - x0) * (W - PAD_L - PAD_R) } else { (PAD_L + W - PAD_R) / 2.0 };
    let py = |y: f64| PAD_T + (y1 - y) / (y1 - y0) * (H - PAD_T - PAD_B);
    let _ = write!(s, "<line x1=\"{PAD_L}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>", H - PAD_B, W - PAD_R, H - PAD_B);
    let _ = write!(s, "<line x1=\"{PAD_L}\" y1=\"{PAD_T}\" x2=\"{PAD_L}\" y2=\"{}\" stroke=\"#999\"/>", H - PAD_B);
    for i in 0..=4 {
        let y = y0 + (y1 - y0) * i as f64 / 4.0;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#555\">{}</text>",
            PAD_L - 6.0,
            py(y) + 4.0,
            fmt_num(y)
        );
    }
    for (x, _) in &finite {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">{x}</text>",
            px(*x),
            H - PAD_B + 16.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
        (PAD_L + W) / 2.0,
        H - 6.0,
        escape(x_label)
    );
    let path: Vec<String> = finite.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
    let _ = write!(s, "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>", PALETTE[0], path.join(" "));
    for (i, (x, y)) in points.iter().enumerate() {
        if !y.is_finite() {
            continue;
        }
        let chosen = mark == Some(i);
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\" fill=\"{}\"{}/>",
            px(*x),
            py(*y),
            if chosen { 7 } else { 3 },
            if chosen { PALETTE[1] } else { PALETTE[0] },
            if chosen { " class=\"chosen\"" } else { "" }
        );
        if chosen {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"{}\">chosen k = {x}</text>",
                px(*x) + 9.0,
                py(*y) - 9.0,
                PALETTE[1]
            );
        }
    }
    s.push_str("</svg></figure>");
    s
}

/// Horizontal grouped bars: one group per category, one bar per series (values in [0, 1]).
fn bar_chart(id: &str, title: &str, categories: &[String], series: &[(&str, Vec<f64>)], percent: bool) -> String {
    let group_h = 12.0 * series.len() as f64 + 10.0;
    let height = PAD_T + group_h * categories.len() as f64 + 34.0;
    let label_w = 190.0;
    let bar_w = W - label_w - 60.0;
    let mut s = String::new();
    let _ = write!(s, "<figure class=\"chart\" data-chart=\"{id}\"><figcaption>{}</figcaption>", escape(title));
    let _ =
        write!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\" role=\"img\">");
    for (ci, cat) in categories.iter().enumerate() {
        let gy = PAD_T + ci as f64 * group_h;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            gy + group_h / 2.0,
            escape(cat)
        );
        for (si, (_, values)) in series.iter().enumerate() {
            let v = values.get(ci).copied().unwrap_or(0.0);
            let v = if v.is_finite() { v.clamp(0.0, 1.0) } else { 0.0 };
            let y = gy + si as f64 * 12.0;
            let _ = write!(
                s,
                "<rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"10\" fill=\"{}\"/>",
                v * bar_w,
                PALETTE[si % PALETTE.len()]
            );
            let text = if percent { format!("{:.1}%", v * 100.0) } else { format!("{:.2}", v) };
            let _ =
                write!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#333\">{text}</text>", label_w + v * bar_w + 4.0, y + 9.0);
        }
    }
    let ly = height - 12.0;
    for (si, (name, _)) in series.iter().enumerate() {
        let lx = label_w + si as f64 * 130.0;
        let _ = write!(s, "<rect x=\"{lx}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>", ly - 9.0, PALETTE[si % PALETTE.len()]);
        let _ = write!(s, "<text x=\"{}\" y=\"{ly}\" font-size=\"11\">{}</text>", lx + 14.0, escape(name));
    }
    s.push_str("</svg></figure>");
    s
}

pub fn html(r: &ReportInput<'_>) -> String {
    let m = r.model;
    let k = m.clusters.len();
    let chosen = r.curve.iter().position(|p| p.k == k);
    let labels: Vec<String> = m.clusters.iter().map(|c| c.label.clone()).collect();
    let total: f64 = m.clusters.iter().map(|c| c.size as f64).sum::<f64>().max(1.0);
    let shares: Vec<f64> = m.clusters.iter().map(|c| c.size as f64 / total).collect();
    let encoded = m.encoded();
    let money = encoded.iter().position(|f| f == "monetary");
    let revenue: Option<Vec<f64>> = money.map(|j| {
        let sum: f64 = m.clusters.iter().map(|c| c.sum.get(j).copied().unwrap_or(0.0)).sum();
        m.clusters.iter().map(|c| c.sum.get(j).copied().unwrap_or(0.0) / if sum != 0.0 { sum } else { 1.0 }).collect()
    });
    // Profile: each feature's cluster means divided by the largest cluster mean.
    let profile: Vec<(&str, Vec<f64>)> = encoded
        .iter()
        .enumerate()
        .map(|(j, f)| {
            let means: Vec<f64> = m.clusters.iter().map(|c| c.mean.get(j).copied().unwrap_or(f64::NAN)).collect();
            let max = means.iter().copied().filter(|v| v.is_finite()).fold(0.0f64, |a, v| a.max(v.abs()));
            (f.as_str(), means.iter().map(|v| if max > 0.0 { v.abs() / max } else { 0.0 }).collect())
        })
        .collect();

    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>pg_rfm report: {name}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:24px;color:#1a202c;max-width:1180px}}\
         h1{{font-size:22px}}.grid{{display:flex;flex-wrap:wrap;gap:16px}}figure{{margin:0;border:1px solid #e2e8f0;\
         border-radius:6px;padding:8px}}figcaption{{font-weight:600;margin-bottom:4px}}table{{border-collapse:collapse;\
         margin-top:16px;font-size:13px}}td,th{{border-bottom:1px solid #e2e8f0;padding:4px 8px;text-align:left}}\
         td.n{{text-align:right}}.meta{{color:#4a5568}}</style></head><body>",
        name = escape(r.name)
    );
    let _ = write!(
        s,
        "<h1>Customer segments: model {} (version {})</h1><p class=\"meta\">{} segments over {} customers; features {}; trained {}.</p>",
        escape(r.name),
        r.version,
        k,
        r.n_rows,
        escape(&m.features.join(", ")),
        escape(r.created_at)
    );
    s.push_str("<div class=\"grid\">");
    let inertia: Vec<(f64, f64)> = r.curve.iter().map(|p| (p.k as f64, p.inertia)).collect();
    let silhouette: Vec<(f64, f64)> = r.curve.iter().map(|p| (p.k as f64, p.silhouette.unwrap_or(f64::NAN))).collect();
    s.push_str(&line_chart("elbow", "Elbow: inertia by k", "k (clusters)", &inertia, chosen));
    s.push_str(&line_chart("silhouette", "Silhouette by k", "k (clusters)", &silhouette, chosen));
    let mut size_series = vec![("share of customers", shares.clone())];
    if let Some(rev) = &revenue {
        size_series.push(("share of revenue", rev.clone()));
    }
    s.push_str(&bar_chart("sizes", "Segment sizes and revenue shares", &labels, &size_series, true));
    s.push_str(&bar_chart("profile", "Segment profiles (mean of each feature / largest mean)", &labels, &profile, false));
    s.push_str("</div>");

    s.push_str("<table class=\"segments\"><thead><tr><th>#</th><th>segment</th><th>customers</th><th>share</th>");
    for f in &encoded {
        let _ = write!(s, "<th>mean {}</th>", escape(f));
    }
    if revenue.is_some() {
        s.push_str("<th>revenue share</th>");
    }
    s.push_str("<th>recommended action</th></tr></thead><tbody>");
    for (i, c) in m.clusters.iter().enumerate() {
        let _ = write!(
            s,
            "<tr class=\"segment\" data-segment=\"{}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}%</td>",
            escape(&c.label),
            c.cluster,
            escape(&c.label),
            c.size,
            shares[i] * 100.0
        );
        for j in 0..encoded.len() {
            let _ = write!(s, "<td class=\"n\">{}</td>", fmt_num(c.mean.get(j).copied().unwrap_or(f64::NAN)));
        }
        if let Some(rev) = &revenue {
            let _ = write!(s, "<td class=\"n\">{:.1}%</td>", rev[i] * 100.0);
        }
        let _ = write!(s, "<td>{}</td></tr>", escape(&c.action));
    }
    s.push_str("</tbody></table>");
    if !r.columns.is_empty() {
        s.push_str("<h2>Segments by source columns</h2><table class=\"columns\"><thead><tr><th>#</th><th>segment</th><th>column</th><th>mean</th><th>median</th><th>most frequent</th></tr></thead><tbody>");
        for p in r.columns {
            let levels: Vec<String> = p
                .levels
                .iter()
                .zip(&p.shares)
                .map(|(l, sh)| format!("{} {:.0}%", escape(l.as_deref().unwrap_or("(null)")), sh * 100.0))
                .collect();
            let _ = write!(
                s,
                "<tr class=\"column\"><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                p.cluster,
                escape(&p.label),
                escape(&p.column),
                p.mean.map_or(String::new(), fmt_num),
                p.median.map_or(String::new(), fmt_num),
                levels.join(", ")
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Cluster;
    use crate::core::scale::{Outliers, Scaler};

    fn model() -> Model {
        let c = |i: i32, label: &str, size: i64, m: f64| Cluster {
            cluster: i,
            label: label.into(),
            action: "Call <them> & \"thank\" them".into(),
            scaled: vec![0.0; 3],
            original: vec![0.0; 3],
            size,
            mean: vec![10.0 * i as f64, 2.0, m],
            median: vec![0.0; 3],
            sum: vec![0.0, 0.0, m * size as f64],
        };
        Model {
            features: vec!["recency".into(), "frequency".into(), "monetary".into()],
            encoding: vec![],
            pca: None,
            scaler: Scaler {
                outliers: Outliers::Keep,
                lower: vec![f64::NEG_INFINITY; 3],
                upper: vec![f64::INFINITY; 3],
                log: vec![false; 3],
                mean: vec![0.0; 3],
                scale: vec![1.0; 3],
            },
            clusters: vec![c(1, "Loyal <b>", 60, 100.0), c(2, "Lost", 40, 10.0)],
        }
    }

    #[test]
    fn charts_segments_and_escaping() {
        let m = model();
        let curve: Vec<KPoint> = (2..=4)
            .map(|k| KPoint {
                k,
                inertia: 100.0 / k as f64,
                silhouette: Some(0.5),
                davies_bouldin: None,
                calinski_harabasz: None,
                iterations: 3,
                elapsed_ms: 1.0,
            })
            .collect();
        let out = html(&ReportInput { name: "m<1>", version: 3, model: &m, curve: &curve, n_rows: 100, created_at: "today", columns: &[] });
        assert_eq!(out.matches("<svg").count(), 4);
        assert_eq!(out.matches("<tr class=\"segment\"").count(), 2);
        assert_eq!(out.matches("class=\"chosen\"").count(), 2, "k = 2 marked on both curves");
        assert!(out.contains("Loyal &lt;b&gt;") && !out.contains("Loyal <b>"));
        assert!(out.contains("Call &lt;them&gt; &amp; &quot;thank&quot; them"));
        assert!(!out.contains("<script"));
        assert_eq!(out.matches("http").count(), out.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(), "no links out");
        // Revenue shares: 60 * 100 = 6000 and 40 * 10 = 400 of 6400.
        assert!(out.contains("93.8%") && out.contains("6.2%"));
    }

    #[test]
    fn empty_curve_still_renders() {
        let m = model();
        let out = html(&ReportInput { name: "m", version: 1, model: &m, curve: &[], n_rows: 0, created_at: "", columns: &[] });
        assert_eq!(out.matches("<svg").count(), 4);
        assert!(out.contains("no data"));
    }
}
