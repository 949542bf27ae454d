// SPDX-License-Identifier: GPL-2.0
//! A figure over several runs: median, minimum, maximum.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stat {
    /// How many runs.
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    /// The figure of `values`, `None` when there are none (or one is not a number).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() || v.iter().any(|x| x.is_nan()) {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            n,
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// The same figure in another unit.
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            median: self.median * factor,
            min: self.min * factor,
            max: self.max * factor,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Stat::of([5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.n, s.median, s.min, s.max), (3, 3.0, 1.0, 5.0));
        assert_eq!(Stat::of([4.0, 1.0, 2.0, 10.0]).unwrap().median, 3.0);
        assert_eq!(Stat::of([]), None);
        assert_eq!(Stat::of([1.0, f64::NAN]), None);
        assert_eq!(Stat::of([2.0]).unwrap().scaled(0.5).max, 1.0);
    }
}
