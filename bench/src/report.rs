//! The benchmark's table: each row's best of the rounds per module, the spread, the speed ratio and
//! the cost over the raw engine.

/// One row's samples: per module, per round.
pub struct Result {
    pub name: String,
    pub unit: &'static str,
    pub samples: Vec<Vec<f64>>,
    pub raw: Vec<f64>,
    pub higher_is_better: bool,
}

impl Result {
    fn best(&self, samples: &[f64]) -> f64 {
        let finite = samples.iter().copied().filter(|v| v.is_finite());
        if self.higher_is_better {
            finite.fold(f64::NAN, f64::max)
        } else {
            finite.fold(f64::NAN, f64::min)
        }
    }
}

pub struct Report {
    names: Vec<String>,
    results: Vec<Result>,
}

fn fmt(value: f64) -> String {
    if !value.is_finite() {
        "–".into()
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

impl Report {
    pub fn new(names: Vec<String>) -> Report {
        Report {
            names,
            results: Vec::new(),
        }
    }

    pub fn add(&mut self, result: Result) {
        self.results.push(result);
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from("| row | unit |");
        for name in &self.names {
            out.push_str(&format!(" {name} | spread |"));
        }
        out.push_str(" speed ratio | raw aws-lc-rs | overhead vs raw |\n|---|---|");
        out.push_str(&"---|---|".repeat(self.names.len()));
        out.push_str("---|---|---|\n");
        for r in &self.results {
            out.push_str(&format!("| {} | {} |", r.name, r.unit));
            let bests: Vec<f64> = r.samples.iter().map(|s| r.best(s)).collect();
            for samples in &r.samples {
                let best = r.best(samples);
                let worst = if r.higher_is_better {
                    samples.iter().copied().fold(f64::INFINITY, f64::min)
                } else {
                    samples.iter().copied().fold(0.0, f64::max)
                };
                let spread = ((best - worst) / best * 100.0).abs();
                out.push_str(&format!(" {} | {:.0}% |", fmt(best), spread));
            }
            let ratio = match (bests.first(), bests.get(1)) {
                (Some(a), Some(b)) if r.higher_is_better => a / b,
                (Some(a), Some(b)) => b / a,
                _ => f64::NAN,
            };
            let raw = r.best(&r.raw);
            let overhead = match (r.unit, bests.first()) {
                ("ops/s", Some(ours)) if raw.is_finite() => {
                    format!("{:.2} µs/op", 1e6 / ours - 1e6 / raw)
                }
                ("MiB/s", Some(ours)) if raw.is_finite() => {
                    format!("{:.0}% of raw", ours / raw * 100.0)
                }
                _ => "–".into(),
            };
            out.push_str(&format!(
                " {}× | {} | {} |\n",
                fmt(ratio),
                fmt(raw),
                overhead
            ));
        }
        out
    }
}
