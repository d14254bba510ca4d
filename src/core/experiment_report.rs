//! The HTML page of an experiment's results (`rfm_experiment_report`): per treatment arm,
//! the difference to control with its 95% interval, overall and per stratum, as inline SVG
//! interval charts (conversion, revenue per customer, and CUPED revenue when there is a
//! covariate), and the table of every row. No scripts, no network.

use std::fmt::Write;

use super::report::escape;

/// One row of rfm_experiment_results, as the report needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultRow {
    pub stratum: Option<String>,
    pub overall: bool,
    pub arm: String,
    pub customers: i64,
    pub conversion_rate: Option<f64>,
    pub revenue_per_customer: Option<f64>,
    pub lift_abs: Option<f64>,
    pub ci: Option<(f64, f64)>,
    pub p_value: Option<f64>,
    pub p_adjusted: Option<f64>,
    pub revenue_diff: Option<f64>,
    pub revenue_ci: Option<(f64, f64)>,
    pub revenue_p_value: Option<f64>,
    pub cuped_diff: Option<f64>,
    pub cuped_ci: Option<(f64, f64)>,
    pub srm_p_value: Option<f64>,
}

pub struct ExperimentReport<'a> {
    pub name: &'a str,
    pub window: &'a str,
    pub control: &'a str,
    pub rows: &'a [ResultRow],
}

const W: f64 = 560.0;
const ROW_H: f64 = 26.0;
const PAD_L: f64 = 170.0;
const PAD_R: f64 = 24.0;

fn fmt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "–".into(),
    }
}

fn scope_label(r: &ResultRow) -> String {
    if r.overall {
        "overall".into()
    } else {
        r.stratum.clone().unwrap_or_else(|| "(no stratum)".into())
    }
}

/// An interval chart: one line per scope, the estimate as a dot and the interval as a bar,
/// with the zero line; `percent` shows values x 100.
/// One line of an interval chart: its label, the estimate and the interval.
type Interval = (String, Option<f64>, Option<(f64, f64)>);

fn interval_chart(id: &str, title: &str, items: &[Interval], percent: bool) -> String {
    let mut s = String::new();
    let h = 44.0 + ROW_H * items.len().max(1) as f64;
    let _ = write!(s, "<figure class=\"chart\" data-chart=\"{id}\"><figcaption>{}</figcaption>", escape(title));
    let _ = write!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" role=\"img\">");
    let mut lo = 0.0f64;
    let mut hi = 0.0f64;
    for (_, est, ci) in items {
        for v in [est.map(|e| (e, e)), *ci].into_iter().flatten() {
            if v.0.is_finite() && v.1.is_finite() {
                lo = lo.min(v.0);
                hi = hi.max(v.1);
            }
        }
    }
    if hi - lo <= 0.0 {
        hi = lo + 1.0;
    }
    let pad = 0.05 * (hi - lo);
    let (lo, hi) = (lo - pad, hi + pad);
    let x = |v: f64| PAD_L + (v - lo) / (hi - lo) * (W - PAD_L - PAD_R);
    let scale = if percent { 100.0 } else { 1.0 };
    let unit = if percent { " pt" } else { "" };
    let zero = x(0.0);
    let _ =
        write!(s, "<line x1=\"{zero:.1}\" y1=\"8\" x2=\"{zero:.1}\" y2=\"{:.1}\" stroke=\"#a0aec0\" stroke-dasharray=\"4 3\"/>", h - 28.0);
    for (i, (label, est, ci)) in items.iter().enumerate() {
        let y = 24.0 + ROW_H * i as f64;
        let _ =
            write!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\">{}</text>", PAD_L - 8.0, y + 4.0, escape(label));
        if let Some((a, b)) = ci.filter(|c| c.0.is_finite() && c.1.is_finite()) {
            let color = if a > 0.0 {
                "#38a169"
            } else if b < 0.0 {
                "#e53e3e"
            } else {
                "#4a5568"
            };
            let _ = write!(
                s,
                "<line class=\"ci\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" stroke-width=\"3\"/>",
                x(a),
                x(b)
            );
        }
        match est.filter(|e| e.is_finite()) {
            Some(e) => {
                let _ = write!(s, "<circle class=\"estimate\" cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4.5\" fill=\"#2b6cb0\"/>", x(e));
                let _ = write!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#2d3748\">{:+.2}{unit}</text>",
                    x(e) + 7.0,
                    y - 6.0,
                    e * scale
                );
            }
            None => {
                let _ =
                    write!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#718096\">no estimate</text>", PAD_L + 4.0, y + 4.0);
            }
        }
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#4a5568\">{:.2}{unit}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" \
         text-anchor=\"end\" fill=\"#4a5568\">{:.2}{unit}</text>",
        PAD_L,
        h - 10.0,
        lo * scale,
        W - PAD_R,
        h - 10.0,
        hi * scale
    );
    s.push_str("</svg></figure>");
    s
}

pub fn html(r: &ExperimentReport<'_>) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>pg_rfm experiment: {name}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:24px;color:#1a202c;max-width:1180px}}\
         h1{{font-size:22px}}h2{{font-size:17px}}.grid{{display:flex;flex-wrap:wrap;gap:16px}}figure{{margin:0;border:1px solid #e2e8f0;\
         border-radius:6px;padding:8px}}figcaption{{font-weight:600;margin-bottom:4px}}table{{border-collapse:collapse;\
         margin-top:16px;font-size:13px}}td,th{{border-bottom:1px solid #e2e8f0;padding:4px 8px;text-align:left}}\
         td.n{{text-align:right}}.meta{{color:#4a5568}}</style></head><body>\
         <h1>Experiment {name}</h1><p class=\"meta\">Outcomes {window}; each arm against {control}; intervals 95%.</p>",
        name = escape(r.name),
        window = escape(r.window),
        control = escape(r.control)
    );
    let mut arms: Vec<&str> = Vec::new();
    for row in r.rows {
        if row.arm != r.control && !arms.contains(&row.arm.as_str()) {
            arms.push(&row.arm);
        }
    }
    for arm in &arms {
        let mine: Vec<&ResultRow> = r.rows.iter().filter(|x| x.arm == *arm).collect();
        let _ = write!(s, "<h2>{} vs {}</h2><div class=\"grid\">", escape(arm), escape(r.control));
        let conv: Vec<_> = mine.iter().map(|x| (scope_label(x), x.lift_abs, x.ci)).collect();
        s.push_str(&interval_chart("conversion", "Conversion rate difference (percentage points)", &conv, true));
        let rev: Vec<_> = mine.iter().map(|x| (scope_label(x), x.revenue_diff, x.revenue_ci)).collect();
        s.push_str(&interval_chart("revenue", "Revenue per customer difference", &rev, false));
        if mine.iter().any(|x| x.cuped_diff.is_some()) {
            let cuped: Vec<_> = mine.iter().map(|x| (scope_label(x), x.cuped_diff, x.cuped_ci)).collect();
            s.push_str(&interval_chart("cuped", "Revenue per customer difference, CUPED", &cuped, false));
        }
        s.push_str("</div>");
    }
    s.push_str(
        "<table><tr><th>scope</th><th>arm</th><th>customers</th><th>conversion</th><th>revenue / customer</th>\
         <th>lift (pt)</th><th>95% interval</th><th>p</th><th>p (Holm)</th><th>revenue diff</th><th>95% interval</th>\
         <th>p</th><th>SRM p</th></tr>",
    );
    for x in r.rows {
        let ci = |c: Option<(f64, f64)>, k: f64, d: usize| match c {
            Some((a, b)) => format!("{:.d$} to {:.d$}", a * k, b * k),
            None => "–".into(),
        };
        let _ = write!(
            s,
            "<tr class=\"result\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&scope_label(x)),
            escape(&x.arm),
            x.customers,
            fmt(x.conversion_rate.map(|v| v * 100.0), 2) + "%",
            fmt(x.revenue_per_customer, 2),
            fmt(x.lift_abs.map(|v| v * 100.0), 2),
            ci(x.ci, 100.0, 2),
            fmt(x.p_value, 4),
            fmt(x.p_adjusted, 4),
            fmt(x.revenue_diff, 2),
            ci(x.revenue_ci, 1.0, 2),
            fmt(x.revenue_p_value, 4),
            fmt(x.srm_p_value, 3)
        );
    }
    s.push_str("</table></body></html>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_rows_and_escaping() {
        let rows = vec![
            ResultRow { overall: true, arm: "control".into(), customers: 100, conversion_rate: Some(0.1), ..Default::default() },
            ResultRow {
                overall: true,
                arm: "offer".into(),
                customers: 100,
                conversion_rate: Some(0.2),
                lift_abs: Some(0.1),
                ci: Some((0.01, 0.19)),
                revenue_diff: Some(3.0),
                revenue_ci: Some((-1.0, 7.0)),
                ..Default::default()
            },
            ResultRow { stratum: Some("<At Risk>".into()), arm: "offer".into(), customers: 50, lift_abs: None, ..Default::default() },
        ];
        let page = html(&ExperimentReport { name: "win&back", window: "2012", control: "control", rows: &rows });
        assert_eq!(page.matches("<svg").count(), 2);
        assert_eq!(page.matches("<tr class=\"result\"").count(), 3);
        assert!(page.contains("win&amp;back") && page.contains("&lt;At Risk&gt;") && !page.contains("<At Risk>"));
        assert_eq!(page.matches("class=\"ci\"").count(), 2);
        assert!(page.contains("no estimate"));
    }
}
