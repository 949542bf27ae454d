// SPDX-License-Identifier: GPL-2.0
//! `lu-bench-report [--json FILE] [--svg FILE] INPUT...`: the figures of `make bench` from what
//! its runs printed (see the `lu_bench` crate), as a table on stdout, and as JSON and an SVG
//! chart of the scaling figures when asked.

use std::process::ExitCode;

use lu_bench::{figures::Figures, parse::Raw, render};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut json, mut svg, mut inputs) = (None, None, Vec::new());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = args.next(),
            "--svg" => svg = args.next(),
            _ if arg.starts_with('-') => {
                eprintln!("usage: lu-bench-report [--json FILE] [--svg FILE] INPUT...");
                return ExitCode::from(2);
            }
            _ => inputs.push(arg),
        }
    }
    let mut raw = Raw::default();
    for input in &inputs {
        match std::fs::read(input) {
            Ok(bytes) => raw.add(&String::from_utf8_lossy(&bytes)),
            Err(e) => {
                eprintln!("lu-bench-report: {input}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let figures = Figures::of(&raw);
    print!("{}", render::table(&figures));
    let write = |path: &str, text: String| {
        std::fs::write(path, text).map_err(|e| eprintln!("lu-bench-report: {path}: {e}"))
    };
    if let Some(path) = json {
        let doc = serde_json::json!({ "figures": figures, "samples": raw.samples, "updates": raw.updates });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        if write(&path, text + "\n").is_err() {
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = svg {
        if write(&path, render::scaling_chart(&figures.scale)).is_err() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
