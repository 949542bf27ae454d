// SPDX-License-Identifier: GPL-2.0
//! The host side of `make bench`: reads what the benchmark runs printed (the runner's reports of
//! the guest's `bench` lines and of the update timelines, the kernel's KUnit figures, the sizes
//! and test times the script adds), and makes the figures: each a median with its minimum and
//! maximum over the runs, kept against cold as ratios, as a table, JSON and an SVG chart.
//!
//! Nothing here judges a number: benchmarks print figures, the targets are printed beside them.

pub mod figures;
pub mod parse;
pub mod render;
pub mod stats;
