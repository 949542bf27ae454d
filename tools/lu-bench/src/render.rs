// SPDX-License-Identifier: GPL-2.0
//! The figures as a text table (with the issue's targets beside them) and as an SVG chart of the
//! per-device cost against the device count.

use std::fmt::Write;

use crate::figures::{Figures, Scale};
use crate::stats::Stat;

fn stat(s: Option<Stat>, digits: usize) -> String {
    match s {
        Some(s) => format!("{:.d$} [{:.d$}-{:.d$}]", s.median, s.min, s.max, d = digits),
        None => "-".into(),
    }
}

fn runs(stats: &[Option<Stat>]) -> usize {
    stats.iter().flatten().map(|s| s.n).max().unwrap_or(0)
}

fn percent(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{:.1}%", r * 100.0))
}

/// A table with a header row, columns padded to their widest cell.
fn columns(out: &mut String, rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
    }
}

fn cost_ratio(scale: &[Scale], pick: impl Fn(&Scale) -> Option<Stat>) -> Option<f64> {
    let one = pick(scale.iter().find(|s| s.devices == 1)?)?;
    let most = pick(scale.iter().max_by_key(|s| s.devices)?)?;
    Some(most.median / one.median)
}

pub fn table(f: &Figures) -> String {
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(
        o,
        "Figures: median [min-max] over the runs. Absolute times are under QEMU TCG, context only;\n\
         compare the ratios, measured side by side in the same boot.\n"
    );

    let _ = writeln!(
        o,
        "P1 device ready after the update: ms from the VMM's first call (RETRIEVE_FD, or open)"
    );
    if f.ready.is_empty() {
        let _ = writeln!(o, "  no figures");
    } else {
        let mut rows = vec![vec![
            "model".into(),
            "path".into(),
            "runs".into(),
            "file".into(),
            "bound (enable)".into(),
            "IOAS attached".into(),
            "memory mapped".into(),
            "first BAR access".into(),
            "first DMA".into(),
        ]];
        for r in &f.ready {
            rows.push(vec![
                r.model.clone(),
                r.path.clone(),
                runs(&[r.bar]).to_string(),
                stat(r.get, 1),
                stat(r.bind, 1),
                stat(r.attach, 1),
                stat(r.mapped, 1),
                stat(r.bar, 1),
                stat(r.dma, 1),
            ]);
        }
        columns(o, &rows);
        for r in &f.ratios {
            let dma = |d: Option<f64>| {
                d.map(|d| format!(", {} to the first DMA", percent(Some(d))))
                    .unwrap_or_default()
            };
            let _ = writeln!(
                o,
                "  {}: kept/cold {} to the first BAR access{} (target: kept <= 5% of cold); \
                 kept/cold-noreset {}{}",
                r.model,
                percent(r.bar),
                dma(r.dma),
                percent(r.bar_no_reset),
                dma(r.dma_no_reset),
            );
        }
    }

    let _ = writeln!(
        o,
        "\nP2 scaling: per device (each update's total over its devices), ms; whole update, s \
         (host clock)"
    );
    if f.scale.is_empty() {
        let _ = writeln!(o, "  no figures");
    } else {
        let mut rows = vec![vec![
            "devices".into(),
            "PRESERVE_FD".into(),
            "kept: RETRIEVE_FD..BAR".into(),
            "cold: open..BAR".into(),
            "reboot..jump kept".into(),
            "none kept".into(),
            "reboot..last usable kept".into(),
            "none kept".into(),
        ]];
        for s in &f.scale {
            rows.push(vec![
                s.devices.to_string(),
                stat(s.preserve, 2),
                stat(s.kept, 1),
                stat(s.cold, 1),
                stat(s.jump_kept, 2),
                stat(s.jump_none, 2),
                stat(s.usable_kept, 2),
                stat(s.usable_none, 2),
            ]);
        }
        columns(o, &rows);
        for s in &f.scale {
            let _ = writeln!(
                o,
                "  {} device{}, single calls: PRESERVE_FD {}, kept {}, cold {}",
                s.devices,
                if s.devices == 1 { "" } else { "s" },
                stat(s.preserve_call, 2),
                stat(s.kept_call, 1),
                stat(s.cold_call, 1)
            );
        }
        let most = f.scale.iter().map(|s| s.devices).max().unwrap_or(0);
        let ratio = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}x"));
        let _ = writeln!(
            o,
            "  per-device cost at {most} devices against 1: PRESERVE_FD {}, RETRIEVE_FD..BAR {} \
             (target <= 1.2x)",
            ratio(cost_ratio(&f.scale, |s| s.preserve)),
            ratio(cost_ratio(&f.scale, |s| s.kept)),
        );
    }
    if !f.table.is_empty() {
        let _ = writeln!(
            o,
            "  the PCI core's table in the kernel (KUnit), ns per call:"
        );
        let mut rows = vec![vec![
            "  entries".into(),
            "insert".into(),
            "lookup".into(),
            "remove".into(),
        ]];
        for t in &f.table {
            rows.push(vec![
                format!("  {}", t.entries),
                stat(t.insert, 0),
                stat(t.lookup, 0),
                stat(t.remove, 0),
            ]);
        }
        columns(o, &rows);
        if let (Some(first), Some(last)) = (f.table.first(), f.table.last()) {
            let growth = |a: Option<Stat>, b: Option<Stat>| match (a, b) {
                (Some(a), Some(b)) => format!("{:.1}x", b.median / a.median),
                _ => "-".into(),
            };
            let _ = writeln!(
                o,
                "  from {} to {} entries ({}x): insert {}, lookup {}, remove {} per call",
                first.entries,
                last.entries,
                last.entries / first.entries.max(1),
                growth(first.insert, last.insert),
                growth(first.lookup, last.lookup),
                growth(first.remove, last.remove),
            );
        }
    }

    let _ = writeln!(
        o,
        "\nP3 memory handed over (KHO), bytes, as the kernel reports them"
    );
    if f.records.is_empty() && f.pci_tables.is_empty() {
        let _ = writeln!(o, "  no figures");
    }
    // The PCI table's KHO memory shared by the kept devices, with the fewest and the most.
    let shares: Vec<(u32, u32)> = [
        f.pci_tables.iter().min_by_key(|t| t.kept),
        f.pci_tables.iter().max_by_key(|t| t.kept),
    ]
    .into_iter()
    .flatten()
    .map(|t| (t.kept, t.kho / t.kept.max(1)))
    .collect();
    for r in &f.records {
        let kho = r.kho.map(|s| s.median).unwrap_or(0.0);
        let _ =
            writeln!(
            o,
            "  {}: vfio record {} bytes (config space {} of {}, PCI state {}) in {} bytes of KHO \
             memory",
            r.model,
            r.record.map_or("-".into(), |s| format!("{:.0}", s.median)),
            r.config_stored.map_or("-".into(), |s| format!("{:.0}", s.median)),
            r.config.map_or("-".into(), |s| format!("{:.0}", s.median)),
            r.saved_state.map_or("-".into(), |s| format!("{:.0}", s.median)),
            kho,
        );
        for (kept, share) in &shares {
            let _ = writeln!(
                o,
                "    with its share of the PCI table, {kept} kept: {:.0} bytes of KHO memory per \
                 device (target <= 8192)",
                kho + f64::from(*share)
            );
        }
    }
    for t in &f.pci_tables {
        let _ = writeln!(
            o,
            "  PCI table, {} kept: {} entries (devices and bridges), {} bytes ({} per entry, \
             target 8), in {} bytes of KHO memory ({} per kept device)",
            t.kept,
            t.entries,
            t.bytes,
            t.bytes / t.entries.max(1),
            t.kho,
            t.kho / t.kept.max(1)
        );
    }

    let _ = writeln!(o, "\nP4 size (size(1): text, data, bss)");
    if f.sizes.is_empty() {
        let _ = writeln!(o, "  no figures");
    } else {
        let mut rows = vec![vec![
            "config".into(),
            "object".into(),
            "text".into(),
            "data".into(),
            "bss".into(),
        ]];
        for s in &f.sizes {
            rows.push(vec![
                s.config.clone(),
                s.object.clone(),
                s.text.to_string(),
                s.data.to_string(),
                s.bss.to_string(),
            ]);
        }
        columns(o, &rows);
        for (from, to, what) in [
            ("pristine", "off", "both options =n against pristine 7.3"),
            ("off", "production", "both options =y against =n"),
        ] {
            for object in f.sizes.iter().filter(|s| s.config == to) {
                let Some(base) = f
                    .sizes
                    .iter()
                    .find(|s| s.config == from && s.object == object.object)
                else {
                    continue;
                };
                let d = |a: u64, b: u64| b as i64 - a as i64;
                let _ = writeln!(
                    o,
                    "  {what}, {}: text {:+}, data {:+}, bss {:+}",
                    object.object,
                    d(base.text, object.text),
                    d(base.data, object.data),
                    d(base.bss, object.bss)
                );
            }
        }
    }

    let _ = writeln!(o, "\nP5 make test, s (recorded by scripts/test.sh)");
    for t in &f.test_times {
        let _ = writeln!(
            o,
            "  {}: {}{}",
            t.kind,
            t.seconds
                .map_or("no run recorded on this machine".into(), |s| format!(
                    "{} over {} runs",
                    stat(Some(s), 0),
                    s.n
                )),
            t.latest
                .as_ref()
                .map(|l| format!("; latest: {l}"))
                .unwrap_or_default()
        );
    }
    out
}

/// The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) times 5
/// (the chart's grid lines) that is at least `max`.
fn nice_ceiling(max: f64) -> f64 {
    let step = max / 5.0;
    let magnitude = 10f64.powf(step.log10().floor());
    let nice = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= step)
        .unwrap_or(10.0 * magnitude);
    nice * 5.0
}

/// Which figure of a [`Scale`] a series shows.
type Pick = fn(&Scale) -> Option<Stat>;

/// An SVG line chart of the per-device cost (ms) against the device count: median points
/// joined, min-max whiskers.
pub fn scaling_chart(scale: &[Scale]) -> String {
    let series: [(&str, &str, Pick); 3] = [
        ("cold: open (reset) to first BAR access", "#c0392b", |s| {
            s.cold
        }),
        ("kept: RETRIEVE_FD to first BAR access", "#2471a3", |s| {
            s.kept
        }),
        ("kept: PRESERVE_FD", "#229954", |s| s.preserve),
    ];
    let (w, h, left, right, top, bottom) = (720.0, 460.0, 70.0, 20.0, 40.0, 100.0);
    let ymax = nice_ceiling(
        scale
            .iter()
            .flat_map(|s| series.iter().filter_map(move |(_, _, f)| f(s)))
            .map(|s| s.max)
            .fold(1.0_f64, f64::max),
    );
    let n = scale.len().max(1) as f64;
    let x = |i: usize| left + (w - left - right) * (i as f64 + 0.5) / n;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / ymax);
    let mut svg = String::new();
    let s = &mut svg;
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">Live Update, cost per device against devices (median, min-max; QEMU TCG)</text>"#,
        w / 2.0
    );
    for k in 0..=5 {
        let v = ymax * f64::from(k) / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.0}</text>"##,
            w - right,
            left - 6.0,
            y(v) + 4.0,
            y = y(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" transform="rotate(-90 18 {:.1})" text-anchor="middle">ms per device</text>"#,
        (h - bottom + top) / 2.0,
        (h - bottom + top) / 2.0
    );
    for (i, sc) in scale.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{} device{}</text>"#,
            x(i),
            h - bottom + 18.0,
            sc.devices,
            if sc.devices == 1 { "" } else { "s" }
        );
    }
    for (k, (name, color, pick)) in series.iter().enumerate() {
        let points: Vec<(f64, Stat)> = scale
            .iter()
            .enumerate()
            .filter_map(|(i, sc)| Some((x(i), pick(sc)?)))
            .collect();
        let path: Vec<String> = points
            .iter()
            .map(|(px, st)| format!("{px:.1},{:.1}", y(st.median)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for (px, st) in &points {
            let _ = writeln!(
                s,
                r#"<line x1="{px:.1}" x2="{px:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}"/><circle cx="{px:.1}" cy="{:.1}" r="3.5" fill="{color}"/>"#,
                y(st.min),
                y(st.max),
                y(st.median)
            );
        }
        let ly = h - 60.0 + 18.0 * k as f64;
        let lx = left;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{ly}">{name}</text>"#,
            ly - 10.0,
            lx + 16.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Raw;

    #[test]
    fn every_section_renders_even_without_figures() {
        let t = table(&Figures::of(&Raw::default()));
        for section in ["P1", "P2", "P3", "P4", "P5"] {
            assert!(t.contains(section), "{section}");
        }
        assert!(t.contains("no run recorded"));
    }

    #[test]
    fn grid_lines_fall_on_round_numbers() {
        assert_eq!(nice_ceiling(172.0), 200.0);
        assert_eq!(nice_ceiling(149.8), 150.0);
        assert_eq!(nice_ceiling(41.0), 50.0);
        assert_eq!(nice_ceiling(12.0), 12.5);
    }

    #[test]
    fn the_chart_has_a_point_per_device_count_and_series() {
        let mut raw = Raw::default();
        raw.add(
            "==> report of scale-1\nbench scale stage=2 devices=1 path=kept bar_us=1000\n\
             bench scale stage=3 devices=1 path=cold bar_us=100000\n\
             bench preserve stage=1 devices=1 us=10\n\
             ==> report of scale-8\nbench scale stage=2 devices=8 path=kept bar_us=2000\n\
             bench scale stage=3 devices=8 path=cold bar_us=110000\n\
             bench preserve stage=1 devices=8 us=20\n",
        );
        let f = Figures::of(&raw);
        let svg = scaling_chart(&f.scale);
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.contains("8 devices"));
        let t = table(&f);
        assert!(t.contains(
            "per-device cost at 8 devices against 1: PRESERVE_FD 2.00x, RETRIEVE_FD..BAR 2.00x"
        ));
    }
}
